"""SSH connections to boards: Fabric `Connection`s that verify host keys and never hang.

Fabric accepts any host key by default; rkdeploy refuses unknown and changed
keys unless told (`--accept-new-host-keys`, which appends to the project's
known_hosts). Every socket gets TCP_USER_TIMEOUT and keepalives, because after
a link drop a paramiko transfer otherwise blocks forever (LAB-NOTES.md).
"""
from __future__ import annotations

import logging
import os
import random
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from fabric import Config, Connection
from paramiko.ssh_exception import BadHostKeyException, NoValidConnectionsError, SSHException

from .inventory import Board


def quiet_paramiko(debug_file: str | None = None) -> logging.Logger:
    """paramiko logs (with tracebacks) from its transport threads: with no handler of its own, Python's
    last-resort handler printed every WARNING+ record, traceback and the server's raw banner text included,
    on the operator's terminal. Its logger gets a NullHandler and does not propagate; what matters reaches
    the report as the exception rkdeploy raises. `RKDEPLOY_DEBUG=FILE` (or `debug_file`) appends paramiko's
    DEBUG records, tracebacks included, to FILE instead. Idempotent."""
    log = logging.getLogger("paramiko")
    log.propagate = False
    if not any(getattr(h, "_rkdeploy", False) for h in log.handlers):
        handler: logging.Handler = logging.NullHandler()
        target = debug_file if debug_file is not None else os.environ.get("RKDEPLOY_DEBUG")
        if target:
            try:
                handler = logging.FileHandler(os.path.expanduser(target), encoding="utf-8", errors="backslashreplace")
                handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
                log.setLevel(logging.DEBUG)
            except OSError:
                handler = logging.NullHandler()
        handler._rkdeploy = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    return log


quiet_paramiko()


class Unreachable(ConnectionError):
    """The board did not answer over the network (within the connect timeout)."""


class HostKeyRefused(RuntimeError):
    """The board's host key is unknown or changed, and accepting it was not allowed."""


class LinkLost(ConnectionError):
    """The SSH connection died while a command ran (before its exit status arrived)."""


@dataclass
class SshSettings:
    known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 300.0
    keepalive: int = 3
    retries: int = 2
    ssh_config: str | None = None
    max_output_mib: float = 16.0     # per stream and command: more is refused (OutputTooLarge), never buffered
    sudo_password: str | None = field(default=None, repr=False)   # never printed, never logged

    @property
    def user_timeout_ms(self) -> int:
        """Unacknowledged data for this long kills the socket: 3 missed keepalives, at least 5 s."""
        return max(5000, self.keepalive * 3 * 1000)


_known_hosts_lock = threading.Lock()
_shared: dict = {}


class _FleetTransport(paramiko.Transport):
    # AES-GCM first (the -ctr ciphers stay as fallbacks): its integrity check runs in C, while the
    # HMAC comparison of -ctr runs byte by byte in Python, the top CPU cost when checking a fleet.
    _preferred_ciphers = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") + tuple(
        c for c in paramiko.Transport._preferred_ciphers if "gcm" not in c)


def _known_hosts(path: Path) -> paramiko.HostKeys:
    """known_hosts parsed once per content, not once per board (parsing was O(fleet²) otherwise)."""
    stamp = path.stat().st_mtime_ns if path.exists() else None
    with _known_hosts_lock:
        cached = _shared.get(("known_hosts", path))
        if cached is None or cached[0] != stamp:
            keys = paramiko.HostKeys(str(path)) if stamp is not None else paramiko.HostKeys()
            cached = _shared[("known_hosts", path)] = (stamp, keys)
        return cached[1]


def _fabric_config(ssh_config: str | None) -> Config:
    """One Fabric Config (ssh_config files read once) shared by every connection of a run."""
    with _known_hosts_lock:
        if ("config", ssh_config) not in _shared:
            _shared[("config", ssh_config)] = Config(runtime_ssh_path=ssh_config) if ssh_config else Config()
        return _shared[("config", ssh_config)]


class _KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    def __init__(self, settings: SshSettings):
        self.settings = settings

    def missing_host_key(self, client, hostname, key):
        fingerprint = key.fingerprint
        if not self.settings.accept_new_host_keys:
            raise HostKeyRefused(
                f"unknown host key for {hostname} ({fingerprint}): refused. If this is your board, "
                f"rerun with --accept-new-host-keys to record it in {self.settings.known_hosts}")
        with _known_hosts_lock:
            path = self.settings.known_hosts
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            client.get_host_keys().add(hostname, key.get_name(), key)


def make_connection(board: Board, settings: SshSettings) -> Connection:
    """A not-yet-open Connection for a board; ~/.ssh/config (or settings.ssh_config) applies."""
    config = _fabric_config(settings.ssh_config)
    connect_kwargs = {"banner_timeout": settings.connect_timeout, "auth_timeout": settings.connect_timeout,
                      "channel_timeout": settings.connect_timeout, "transport_factory": _FleetTransport}
    if board.key:
        connect_kwargs.update(key_filename=[board.key], allow_agent=False, look_for_keys=False)
    conn = Connection(host=board.host, user=board.user, port=board.port if board.port != 22 else None,
                      connect_timeout=settings.connect_timeout, connect_kwargs=connect_kwargs, config=config)
    _check_host_keys(conn, settings)
    return conn


def _check_host_keys(conn: Connection, settings: SshSettings) -> None:
    """The board's key must be in our known_hosts, and so must every ProxyJump host's on the way: Fabric
    builds those gateway connections itself, with a policy that would accept any key."""
    name = known_hosts_name(conn.host, conn.port)
    for keytype, key in (_known_hosts(settings.known_hosts).lookup(name) or {}).items():
        conn.client.get_host_keys().add(name, keytype, key)
    conn.client.set_missing_host_key_policy(_KnownHostsPolicy(settings))
    if isinstance(conn.gateway, Connection):
        _check_host_keys(conn.gateway, settings)


def open_connection(board: Board, settings: SshSettings) -> Connection:
    """Connect, retrying quick refusals with jitter until the connect timeout is spent."""
    deadline = time.monotonic() + settings.connect_timeout
    attempt = 0
    while True:
        conn = make_connection(board, settings)
        try:
            if not conn.gateway:
                conn.connect_kwargs["sock"] = _socket(conn.host, int(conn.port), deadline, settings)
            conn.open()
            conn.transport.set_keepalive(settings.keepalive)
            return conn
        except BadHostKeyException as e:
            conn.close()
            raise HostKeyRefused(changed_key_message(e.hostname, _port_of(conn, e.hostname), e.key.fingerprint,
                                                     e.expected_key.fingerprint, settings.known_hosts)) from None
        except paramiko.AuthenticationException as e:
            conn.close()
            raise PermissionError(f"SSH authentication failed for {conn.user}@{conn.host}: {e}") from None
        except HostKeyRefused:
            conn.close()
            raise
        except (socket.timeout, TimeoutError) as e:
            conn.close()
            raise Unreachable(f"no answer from {conn.host}:{conn.port} within {settings.connect_timeout:g} s") from e
        except (OSError, SSHException, EOFError, NoValidConnectionsError) as e:
            why = _describe(e, conn, settings)
            conn.close()
            attempt += 1
            retryable = isinstance(e, (ConnectionRefusedError, ConnectionResetError, EOFError, SSHException))
            pause = min(2.0, 0.2 * 2 ** attempt) * random.uniform(0.5, 1.5)
            if not retryable or attempt > settings.retries or time.monotonic() + pause >= deadline:
                raise Unreachable(f"{conn.host}:{conn.port}: {why}") from e
            time.sleep(pause)


def known_hosts_name(host: str, port: int) -> str:
    """How known_hosts (and ssh-keygen -R) names a host: `host` on port 22, `[host]:port` on any other."""
    return host if int(port) == 22 else f"[{host}]:{port}"


def changed_key_message(host: str, port: int, now: str, known: str, known_hosts: Path) -> str:
    name = known_hosts_name(host, port)
    return (f"host key for {name} CHANGED (now {now}, known as {known}): refused. If the board was "
            f"reinstalled, remove the old entry with: ssh-keygen -R {shlex.quote(name)} -f "
            f"{shlex.quote(str(known_hosts))}")


def _port_of(conn: Connection, hostname: str) -> int:
    """The port of the connection (the board's, or a ProxyJump host's on the way) whose key was checked."""
    hop = conn
    while isinstance(hop, Connection):
        if hop.host == hostname:
            return int(hop.port)
        hop = hop.gateway
    return int(conn.port)


def _socket(host: str, port: int, deadline: float, settings: SshSettings) -> socket.socket:
    timeout = max(0.1, deadline - time.monotonic())
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, settings.user_timeout_ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _describe(e: BaseException, conn: Connection, settings: SshSettings) -> str:
    transport = conn.client.get_transport()
    if isinstance(e, SSHException) and transport is not None and not transport.remote_version:
        # The port took the connection but sent no SSH banner. paramiko words this two ways, depending on
        # which of its two timers (banner, negotiation) ran out first: "Error reading SSH protocol banner",
        # or "No existing session" from the host key step that runs after a negotiation that timed out.
        return (f"no SSH banner within {settings.connect_timeout:g} s: the port accepts connections but no SSH "
                "server answers on it (sshd starting, overloaded, or another service on that port)")
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is sshd running?)"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__
