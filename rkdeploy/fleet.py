"""Run one job on many boards: a bounded pool, live progress, one result per board.

A board's job gets a `BoardSession` (a lazily opened connection that counts
remote commands) and returns a `BoardResult`. Network failures become
`unreachable`, everything else `failed`, and neither stops the other boards
unless `--fail-percent` says so.
"""
from __future__ import annotations

import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from .connection import HostKeyRefused, LinkLost, SshSettings, Unreachable, open_connection
from .inventory import Board

OK, CHANGED, FAILED, UNREACHABLE, SKIPPED = "ok", "changed", "failed", "unreachable", "skipped"


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


@dataclass
class BoardResult:
    board: str
    status: str
    data: Any = None
    error: str = ""
    seconds: float = 0.0
    commands: int = 0
    bytes_sent: int = 0

    @property
    def reachable(self) -> bool:
        return self.status not in (UNREACHABLE, SKIPPED)


class BoardSession:
    """A board's connection for one job: opened on first use, closed at the end, commands counted."""

    def __init__(self, board: Board, settings: SshSettings):
        self.board = board
        self.settings = settings
        self.commands = 0
        self.bytes_sent = 0
        self.on_sent: Callable[[int], None] = lambda delta: None    # the runner's transfer progress
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

    def send_file(self, local: str, command: str, preamble: bytes = b"", chunk: int = 256 * 1024) -> CommandResult:
        """Stream a local file into a remote command's stdin (after `preamble`, e.g. a sudo password line).
        Bytes are reported to the fleet's progress as they go."""
        def blocks():
            if preamble:
                yield preamble
            with open(local, "rb") as f:
                for block in iter(lambda: f.read(chunk), b""):
                    yield block
                    self.bytes_sent += len(block)
                    self.on_sent(len(block))
        return self._exec(command, blocks(), None)

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


@dataclass
class FleetRun:
    results: list[BoardResult] = field(default_factory=list)
    stopped_early: bool = False
    retry_file: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


def exit_code(run: FleetRun) -> int:
    """Bit flags shared by every fleet task: 4 = some board unreachable, 8 = some board failed or skipped."""
    code = 0
    for r in run.results:
        code |= {UNREACHABLE: 4, FAILED: 8, SKIPPED: 8}.get(r.status, 0)
    return code


def classify(error: BaseException, board: Board | None = None) -> tuple[str, str]:
    """(status, message) for an exception raised by a board's job: always a message that says something,
    naming the exception's type and the board's address when the exception itself says nothing."""
    name = type(error).__name__
    text = str(error).strip()
    where = f" to {board.host}:{board.port}" if board is not None else ""
    if isinstance(error, (Unreachable, LinkLost)):
        return UNREACHABLE, text or f"{name}: no answer{where}"
    if isinstance(error, TimeoutError):
        return UNREACHABLE, text or f"timed out{where} (link lost?)"
    if isinstance(error, (EOFError, ConnectionError)) or name in ("SSHException", "ProxyCommandFailure"):
        return UNREACHABLE, (f"connection lost{where}: {text} ({name})" if text else
                             f"connection lost{where}: {name}, without a message (the SSH connection closed)")
    if isinstance(error, (HostKeyRefused, PermissionError, OutputTooLarge)):
        return FAILED, text or f"{name}{where}"
    return FAILED, f"{name}: {text}" if text else f"{name} (no message) on {board.name if board else 'the board'}"


def _retry_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "run"


def write_retry_file(retry_dir: Path, label: str, boards: list[str]) -> Path:
    """The boards to retry, in a file of this run's own (`retry-<label>-<time>-<pid>.txt`: concurrent runs
    never overwrite each other's), and `retry-<label>-latest.txt` pointing at it (a symlink replaced
    atomically; a copy where symlinks fail). `--host @FILE` reads either."""
    retry_dir.mkdir(parents=True, exist_ok=True)
    base = _retry_name(label)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = "".join(f"{b}\n" for b in boards)
    for n in range(1000):
        path = retry_dir / f"retry-{base}-{stamp}-{os.getpid()}{f'-{n}' if n else ''}.txt"
        try:
            with open(path, "x") as f:                # exclusive: never another run's (or this run's) file
                f.write(text)
            break
        except FileExistsError:
            continue
    latest = retry_dir / f"retry-{base}-latest.txt"
    tmp = retry_dir / f".retry-{base}-latest.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        tmp.unlink(missing_ok=True)
        try:
            tmp.symlink_to(path.name)
        except OSError:
            tmp.write_text(text)
        os.replace(tmp, latest)
    except OSError:
        tmp.unlink(missing_ok=True)
    return path


class _LastColumn(ProgressColumn):
    """The last board done, or for the upload task bytes and speed: worked out only when the display
    refreshes (a few times a second), never per block sent, which would cost the senders CPU."""

    def render(self, task) -> Text:
        if not task.fields.get("bytes"):
            return Text(task.fields.get("last", ""))
        speed = f" {task.speed / 1e6:.1f} MB/s" if task.speed else ""
        return Text(f"{task.completed / 1e6:.1f}/{task.total / 1e6:.1f} MB{speed}")


def run_fleet(boards: list[Board], job: Callable[[BoardSession], BoardResult], settings: SshSettings, *,
              label: str, parallel: int = 32, fail_percent: float | None = None,
              console: Console | None = None, retry_dir: Path | None = None, transfer_bytes: int = 0) -> FleetRun:
    """Run `job` on every board, at most `parallel` at a time; never raises for a board's failure."""
    console = console or Console(stderr=True)
    run = FleetRun()
    lock = threading.Lock()
    stop = threading.Event()
    failures = 0

    def one(board: Board) -> BoardResult:
        nonlocal failures
        if stop.is_set():
            return BoardResult(board.name, SKIPPED, error="not started: --fail-percent reached")
        started = time.monotonic()
        session = BoardSession(board, settings)
        session.on_sent = on_sent
        try:
            result = job(session)
        except BaseException as e:  # noqa: BLE001 - one board's failure must not end the fleet
            status, message = classify(e, board)
            result = BoardResult(board.name, status, error=message)
        finally:
            session.close()
        result.seconds = time.monotonic() - started
        result.commands = session.commands
        result.bytes_sent = result.bytes_sent or session.bytes_sent
        with lock:
            if result.status in (FAILED, UNREACHABLE):
                failures += 1
                if fail_percent is not None and failures * 100.0 / len(boards) > fail_percent:
                    stop.set()
        return result

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _LastColumn(),
                        TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)
    transfer = None

    def on_sent(delta: int) -> None:
        if transfer is not None:
            progress.advance(transfer, delta)

    with progress, ThreadPoolExecutor(max_workers=max(1, min(parallel, len(boards) or 1))) as pool:
        task = progress.add_task(label, total=len(boards), last="")
        if transfer_bytes and not progress.disable:
            transfer = progress.add_task("upload", total=transfer_bytes, last="", bytes=True)
        futures = [pool.submit(one, b) for b in boards]
        by_future = dict(zip(futures, boards))
        for future in as_completed(futures):
            progress.update(task, advance=1, last=f"{by_future[future].name}: {future.result().status}")
        run.results = [f.result() for f in futures]
    run.stopped_early = stop.is_set()
    failed = [r.board for r in run.results if r.status in (FAILED, UNREACHABLE, SKIPPED)]
    if failed and retry_dir is not None:
        run.retry_file = write_retry_file(retry_dir, label, failed)
    return run
