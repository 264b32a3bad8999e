"""Run one job on many boards: a bounded pool, live progress, one result per board.

A board's job gets a `BoardSession` (session.py: a lazily opened connection that counts
remote commands and the one way to run anything as root) and returns a `BoardResult`. Network failures become
`unreachable`, everything else `failed`, and neither stops the other boards
unless `--fail-percent` says so.
"""
from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from .connection import HostKeyRefused, LinkLost, SshSettings, Unreachable
from .inventory import Board
from .session import BoardSession, OutputTooLarge

OK, CHANGED, FAILED, UNREACHABLE, SKIPPED = "ok", "changed", "failed", "unreachable", "skipped"


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


@dataclass
class FleetRun:
    results: list[BoardResult] = field(default_factory=list)
    stopped_early: bool = False
    retry_file: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


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
