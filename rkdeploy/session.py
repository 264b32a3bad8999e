"""A board's session for one job: its connection, its commands, and the one way to run anything as root.

`BoardSession` opens the board's SSH connection on first use, counts commands and bytes, and caps what a
command may send back. Root goes through `run_as_root()` / `send_as_root()` only, in the way the board allows,
learnt from the probe (`root_mode`, set by gather_facts and deploy's probe):

    root            the login user is root: the script runs under `sh -c`, no sudo at all (there may be none)
    sudo            `sudo -n` works: `sudo -n sh -c SCRIPT`
    sudo-password   sudo asks for a password. Given one (--prompt-for-sudo-password), it goes to sudo on its
                    own stdin, never the payload's: the board's shell `read`s exactly the first line of the
                    channel, hands it to `sudo -S -v` through a pipe (which caches the credential), then runs
                    `sudo -n sh -c SCRIPT`, whose stdin is the rest of the channel untouched (PASSWORD_WRAPPER)
    no-sudo-rights  sudo is there but the user may not use it
    no-sudo         no sudo binary, and the user is not root

The last two, and sudo-password without a password, raise `RootUnavailable` with the advice that fits before
anything is sent. The password line is only ever sent in sudo-password mode: before this, a board whose sudo
did not read it (NOPASSWD, root login) got it as the first line of an uploaded file.

Measured on the lab's sudo 1.9.13 (no tty, so sudo keys its credential cache by the parent process):
the second sudo must be a child of the very shell that ran the first. `exec sudo …`, the last command of
`sh -c`/`bash -c` (which shells exec without a fork) and `$(sudo …)` (a subshell) all get "sudo: a password
is required"; hence the `|| rkd_rc=$?` after it. A board with `Defaults timestamp_timeout=0` caches nothing:
`sudo -v` succeeds and `sudo -n` right after fails the same way; that is reported as such (ROOT_UNCACHED).
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .connection import LinkLost, SshSettings, open_connection
from .inventory import Board
from .remote import script

ROOT_MODES = ("root", "sudo", "sudo-password", "no-sudo-rights", "no-sudo")
PASSWORD_REFUSED_EXIT = 9

# Sets $rkd_mode to one of ROOT_MODES. POSIX sh, a few processes (and sudo only for a non-root user).
# `sudo -n -v` of a user with no sudo rights says so ("… may not run sudo on …"; running a command, sudo
# asks for the password first and says "a password is required"); a sudoer whose sudo asks for a password
# gets "a password is required". `sudo -n -v` alone is no test for passwordless sudo: with the default
# verifypw=all it needs a password as soon as one sudoers entry does (the lab's rock: NOPASSWD and %sudo).
ROOT_MODE_FUNCTION = """rkd_root_mode() {
  if [ "$(id -u)" = 0 ]; then rkd_mode=root
  elif ! command -v sudo > /dev/null 2>&1; then rkd_mode=no-sudo
  elif sudo -n true > /dev/null 2>&1 < /dev/null; then rkd_mode=sudo
  else
    case "$(LC_ALL=C sudo -n -v 2>&1 < /dev/null)" in
      *"not in the sudoers"*|*"may not run sudo"*|*"not allowed to"*) rkd_mode=no-sudo-rights ;;
      *) rkd_mode=sudo-password ;;
    esac
  fi
}
"""

# The script is $rkd_script (a quoted parameter). The password is the channel's first line: `read` takes
# exactly that line (the shell reads a pipe byte by byte), sudo -S gets it from printf (a builtin: never in an
# argv), and SCRIPT's stdin is what follows. The second sudo runs as a child of this same shell, never exec'd
# or in a subshell (see the module's docstring), or the credential cached by the first is not found.
_AS_ROOT = """rkd_rc=0
sh -c "$rkd_script" || rkd_rc=$?
exit "$rkd_rc"
"""
_AS_SUDO = """rkd_rc=0
sudo -n sh -c "$rkd_script" || rkd_rc=$?
exit "$rkd_rc"
"""
PASSWORD_WRAPPER = """IFS= read -r rkd_pw || rkd_pw=
printf '%s\\n' "$rkd_pw" | sudo -S -p '' -v || { rkd_pw=; exit 9; }
rkd_pw=
unset rkd_pw
rkd_rc=0
sudo -n sh -c "$rkd_script" || rkd_rc=$?
exit "$rkd_rc"
"""

ROOT_UNCACHED = ("sudo accepted the password but did not let the next command run without it: this board's sudo "
                 "keeps no credentials (Defaults timestamp_timeout=0 in /etc/sudoers or /etc/sudoers.d?), so "
                 "rkdeploy cannot run its root steps with a password. Allow passwordless sudo for this user "
                 "(a NOPASSWD rule in /etc/sudoers.d) or log in as root")


class RootUnavailable(RuntimeError):
    """This session cannot run anything as root on the board: says why and what to do."""


def root_advice(mode: str, user: str = "", password_state: str = "") -> str:
    """Why root is out of reach and what fixes it, to follow "<step> needs root and ", or "" when root is
    usable (or the mode is unknown: the session then learns it before its first root command).
    `password_state`: "" (no password given), "given" / "ok" (given; accepted or not yet tried), "refused",
    "uncached". Only a sudo that asks for a password, with none given, is told --prompt-for-sudo-password."""
    who = user or "the login user"
    if mode == "sudo-password":
        if password_state in ("given", "ok"):
            return ""
        if password_state == "refused":
            return ("sudo refused the password given with --prompt-for-sudo-password: rerun and type the login "
                    "user's own password")
        if password_state == "uncached":
            return ROOT_UNCACHED
        return ("sudo asks for a password: rerun with --prompt-for-sudo-password, or allow passwordless sudo "
                "for this user")
    if mode == "no-sudo-rights":
        return (f"{who} may not use sudo on this board: as root on the board grant it (usermod -aG sudo "
                f"{user or 'USER'}, or a rule in /etc/sudoers.d), or log in as root (the inventory's user: root)")
    if mode == "no-sudo":
        return (f"this board has no sudo and {who} is not root: as root on the board install sudo "
                "(apt-get install sudo) and allow it for this user, or log in as root (the inventory's user: root)")
    return ""


def root_command(mode: str | None, body: str, password: str | None) -> tuple[str, bytes]:
    """(the command for the board's login shell, the bytes that go before the payload on its stdin) that
    runs `body` (a script built with remote.script) as root in `mode`. RootUnavailable where it cannot."""
    if mode == "root":
        return script(_AS_ROOT, rkd_script=body), b""
    if mode == "sudo":
        return script(_AS_SUDO, rkd_script=body), b""
    if mode == "sudo-password" and password is not None:
        if "\n" in password or "\r" in password or "\0" in password:
            raise RootUnavailable("the sudo password has a line break or NUL in it: it cannot be passed to sudo")
        return script(PASSWORD_WRAPPER, rkd_script=body), (password + "\n").encode()
    raise RootUnavailable("this step needs root and " + (root_advice(mode or "", "", "given" if password is not None
                                                                     else "") or f"the root mode {mode!r} is unknown"))


def root_failure(mode: str | None, result: "CommandResult") -> str:
    """What went wrong in the root wrapper itself (not in the script), or "" if the script ran."""
    err = result.stderr
    if mode == "sudo-password" and result.return_code == PASSWORD_REFUSED_EXIT and "sudo" in err \
            and ("incorrect password" in err or "Sorry, try again" in err or "no password was provided" in err):
        return root_advice("sudo-password", password_state="refused")
    if mode in ("sudo", "sudo-password") and result.return_code == 1 and \
            err.lstrip().startswith("sudo: a password is required"):
        return ROOT_UNCACHED if mode == "sudo-password" else (
            "sudo asked for a password although the probe found it passwordless: rerun with "
            "--prompt-for-sudo-password, or allow passwordless sudo for this user")
    if mode in ("sudo", "sudo-password") and result.return_code == 1 and \
            ("not in the sudoers" in err or "may not run sudo" in err or "is not allowed to" in err):
        return "sudo refused: " + root_advice("no-sudo-rights")
    return ""


@dataclass
class CommandResult:
    stdout: str          # decoded as UTF-8, bytes that are not UTF-8 as U+FFFD (never an exception)
    stderr: str
    return_code: int     # -1: the command ended without an exit status (killed by a signal)


class OutputTooLarge(RuntimeError):
    """A command sent more than SshSettings.max_output_mib on one stream: rkdeploy stopped reading it."""


def _decode(data: bytes) -> str:
    """Board output as text: file names and messages in other encodings become U+FFFD, never an error, and every
    line that is valid UTF-8 (all the probe prints itself) reads exactly as sent."""
    return data.decode("utf-8", errors="replace")


class BoardSession:
    """A board's connection for one job: opened on first use, closed at the end, commands counted."""

    def __init__(self, board: Board, settings: SshSettings):
        self.board = board
        self.settings = settings
        self.commands = 0
        self.bytes_sent = 0
        self.on_sent: Callable[[int], None] = lambda delta: None    # the runner's transfer progress
        self.root_mode: str | None = None      # one of ROOT_MODES, from the probe (gather_facts, deploy's probe)
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            self._conn = open_connection(self.board, self.settings)
        return self._conn

    def run(self, command: str, *, stdin: str | None = None, timeout: float | None = None) -> CommandResult:
        """Run a remote command (through the login shell); stdin text is sent and never echoed."""
        return self._exec(command, [stdin.encode()] if stdin is not None else [], timeout)

    def upload(self, local: str, remote: str) -> None:
        """SFTP upload (no shell involved, so no quoting) reporting bytes to the fleet's progress."""
        sent = 0

        def progress(done: int, total: int) -> None:
            nonlocal sent
            self.on_sent(done - sent)
            sent = done

        self.conn.sftp().put(local, remote, callback=progress, confirm=True)
        self.bytes_sent += sent

    def send_file(self, local: str, command: str, chunk: int = 256 * 1024) -> CommandResult:
        """Stream a local file into a remote command's stdin (as the login user: root goes through
        send_as_root). Bytes are reported to the fleet's progress as they go."""
        return self._send(local, command, b"", chunk)

    def _send(self, local: str, command: str, preamble: bytes, chunk: int) -> CommandResult:
        def blocks():
            if preamble:
                yield preamble
            with open(local, "rb") as f:
                for block in iter(lambda: f.read(chunk), b""):
                    yield block
                    self.bytes_sent += len(block)
                    self.on_sent(len(block))
        return self._exec(command, blocks(), None)

    # -- root: the only way -------------------------------------------------------------------------------
    def learn_root_mode(self) -> str:
        """The board's root mode, probed by a small command if no probe has told the session yet."""
        if self.root_mode is None:
            out = self.run(script(ROOT_MODE_FUNCTION + 'rkd_root_mode\nprintf \'root_mode=%s\\n\' "$rkd_mode"\n',
                                  LC_ALL="C")).stdout
            mode = out.strip().rpartition("root_mode=")[2]
            if mode not in ROOT_MODES:
                raise RuntimeError(f"could not tell how to become root on the board (it said {out.strip()[:80]!r})")
            self.root_mode = mode
        return self.root_mode

    def run_as_root(self, body: str, *, stdin: str | bytes | None = None, timeout: float | None = None) -> CommandResult:
        """Run `body` (built with remote.script) as root, the board's way; `stdin` reaches it untouched.
        RootUnavailable (with the advice that fits) where this session cannot become root, before anything
        runs; also when sudo itself refused (wrong password, no credential cache)."""
        command, preamble = root_command(self.learn_root_mode(), body, self.settings.sudo_password)
        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        blocks = [b for b in (preamble, data) if b]
        return self._checked_root(self._exec(command, blocks, timeout))

    def send_as_root(self, local: str, body: str, chunk: int = 256 * 1024) -> CommandResult:
        """Stream a local file into `body`'s stdin, run as root the board's way (see run_as_root); bytes
        are reported to the fleet's progress as they go. The payload is exactly the file's bytes."""
        command, preamble = root_command(self.learn_root_mode(), body, self.settings.sudo_password)
        return self._checked_root(self._send(local, command, preamble, chunk))

    def _checked_root(self, result: CommandResult) -> CommandResult:
        problem = root_failure(self.root_mode, result)
        if problem:
            raise RootUnavailable(problem)
        return result

    def _exec(self, command: str, stdin, timeout: float | None) -> CommandResult:
        """One remote command on its own channel: stdin from an iterable of bytes; stdout and stderr read
        side by side (stderr on a helper thread, so that neither can fill the SSH window and stall the other)
        until the command has exited, even if a process it started in the background keeps them open.
        A board that sends nothing for `timeout` seconds (default: command_timeout) is taken for a lost
        link: TimeoutError. More than `max_output_mib` on one stream: reading stops, the channel is closed,
        OutputTooLarge. The SSH connection dying before the command's exit status: LinkLost."""
        self.commands += 1
        timeout = timeout or self.settings.command_timeout
        cap = max(1, int(self.settings.max_output_mib * 1024 * 1024))
        heard = [time.monotonic()]
        overflow: list[str] = []
        transport = self.conn.transport
        channel = transport.open_session()

        def drain(recv, ready, sink: list[bytes], stream: str) -> None:
            size = 0

            def keep(block: bytes) -> bool:
                nonlocal size
                size += len(block)
                if size > cap:                            # never hold more than the cap (+ one block) in memory
                    overflow.append(stream)
                    channel.close()                       # the other reader's recv returns at once too
                    return False
                sink.append(block)
                return True

            while True:
                try:
                    block = recv(65536)
                except socket.timeout:
                    if channel.exit_status_ready():       # ended; take what is there, do not wait for EOF
                        while ready():
                            if not keep(recv(65536)):
                                return
                        return
                    if time.monotonic() - heard[0] >= timeout:
                        return
                    continue
                if not block or overflow:
                    return
                heard[0] = time.monotonic()
                if not keep(block):
                    return

        def lost() -> LinkLost:
            return LinkLost(f"the SSH connection to {self.board.host}:{self.board.port} ended during a command, "
                            "before its exit status (link lost?)")

        try:
            channel.settimeout(timeout)
            channel.exec_command(command)
            try:
                for block in stdin:
                    channel.sendall(block)
                channel.shutdown_write()
            except socket.timeout:
                raise TimeoutError(f"the board took no data for {timeout:g} s (link lost?)") from None
            except OSError:
                # The command ended without reading all of its input (it refused or failed early): what it
                # said and its exit status are the story, not the closed channel. A dead link raises below.
                if not channel.exit_status_ready():
                    if not transport.is_active():
                        raise lost() from None
                    raise
            channel.settimeout(0.1)                        # from here on, poll for the exit status too
            out: list[bytes] = []
            err: list[bytes] = []
            reader = threading.Thread(target=drain, args=(channel.recv_stderr, channel.recv_stderr_ready, err,
                                                          "stderr"), daemon=True)
            reader.start()
            drain(channel.recv, channel.recv_ready, out, "stdout")
            reader.join()
            if overflow:
                raise OutputTooLarge(f"the board sent more than {self.settings.max_output_mib:g} MiB on "
                                     f"{overflow[0]} for one command: rkdeploy stopped reading and closed the channel "
                                     "(raise max_output_mib if this output is expected)")
            if not channel.status_event.wait(max(0.0, timeout - (time.monotonic() - heard[0]))):
                raise TimeoutError(f"no answer from the board for {timeout:g} s (link lost?)")
            status = channel.recv_exit_status()
            if status == -1 and not transport.is_active():  # closed by the transport's end, not by an exit status
                raise lost()
            return CommandResult(_decode(b"".join(out)), _decode(b"".join(err)), status)
        finally:
            channel.close()

    def close(self) -> None:
        """Close; on a dead link closing fails too, and that must not hide what happened before."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass


