"""Saved runs: every `inv check` and `inv perf` keeps its JSON document (the one `--json` prints) under
`<state_dir>/history/<task>-<UTC timestamp>.json`, so `inv report` can chart the fleet over time.

Saving never fails a task: a directory that cannot be written is reported on stderr and the run goes on.
The newest `KEEP` documents per task are kept."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path

from . import report

KEEP = 500
_NAME = re.compile(r"^(?P<task>[\w.]+)-(?P<stamp>\d{8}T\d{6}(?:\.\d{1,6})?Z)(?:-\d+)?\.json$")
_STAMP = "%Y%m%dT%H%M%S.%fZ"


def history_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "history"


def save(state_dir: Path, doc: dict, now: dt.datetime | None = None) -> Path | None:
    """Write `doc` as history/<task>-<timestamp>.json (written to a temporary file, then renamed); the path, or
    None when it could not be written (said on stderr)."""
    directory = history_dir(state_dir)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime(_STAMP)
    task = re.sub(r"[^\w.]", "_", str(doc.get("task", "run")))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        text = report.dumps(doc)
        for n in range(100):
            path = directory / (f"{task}-{stamp}.json" if n == 0 else f"{task}-{stamp}-{n}.json")
            if not path.exists():
                break
        tmp = directory / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_text(text + "\n")
        os.replace(tmp, path)
        _prune(directory, task)
        return path
    except (OSError, TypeError, ValueError) as e:
        print(report.clean(f"rkdeploy: the run was not saved to {directory}: {e}"), file=sys.stderr)
        return None


def _prune(directory: Path, task: str) -> None:
    saved = sorted(p for p in directory.glob(f"{task}-*.json") if _NAME.match(p.name))
    for old in saved[:-KEEP]:
        old.unlink(missing_ok=True)


def saved_at(path: Path) -> dt.datetime:
    """When a saved document was written: its name's timestamp, else the file's modification time (UTC)."""
    m = _NAME.match(path.name)
    if m:
        stamp = m.group("stamp")
        fmt = _STAMP if "." in stamp else "%Y%m%dT%H%M%SZ"
        try:
            return dt.datetime.strptime(stamp, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            pass
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)


def load(path: Path) -> dict | None:
    """A saved document (a JSON object with a `task` key), or None for anything else."""
    try:
        doc = json.loads(Path(path).read_text(errors="replace"))
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("task"), str) else None
