"""Small helpers for running host commands as root, shared by the lab modules."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

CACHE_DIR = Path(os.environ.get("RKDEPLOY_CACHE", Path.home() / ".cache" / "rkdeploy"))


class LabError(RuntimeError):
    """The lab could not do what was asked; the message says why."""


def run(cmd: list[str], *, check: bool = True, capture: bool = True, input: bytes | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, input=input, capture_output=capture, timeout=timeout)
    if check and proc.returncode != 0:
        err = (proc.stderr or b"").decode(errors="replace").strip()
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    return proc


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the board lab needs root (network namespaces, mounts, binfmt_misc)")
