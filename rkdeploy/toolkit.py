"""The PC's rknn-toolkit2, which lives in its own virtualenv and is only ever run as a subprocess.

`import rknn.api` pulls in torch (seconds, gigabytes); its version is read with
importlib.metadata in the toolkit's own Python instead (RKNN-NOTES.md §1).
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from .versions import release_of

_READ_VERSION = "import importlib.metadata as m; print(m.version('rknn-toolkit2'))"


class ToolkitError(RuntimeError):
    pass


@dataclass(frozen=True)
class Toolkit:
    python: str
    version: str

    @property
    def release(self) -> Version | None:
        return release_of(self.version)


def toolkit_python(configured: str | None) -> str | None:
    """RKDEPLOY_TOOLKIT_PYTHON wins over perf.toolkit_python from invoke.yaml."""
    value = os.environ.get("RKDEPLOY_TOOLKIT_PYTHON") or configured
    return str(Path(value).expanduser()) if value else None


def read_toolkit(python: str, timeout: float = 60.0) -> Toolkit:
    if not Path(python).exists():
        raise ToolkitError(f"toolkit Python {python} does not exist (set perf.toolkit_python in invoke.yaml "
                           "or RKDEPLOY_TOOLKIT_PYTHON, or create one with: inv perf.setup)")
    try:
        proc = subprocess.run([python, "-c", _READ_VERSION], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolkitError(f"{python} did not answer within {timeout:g} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise ToolkitError(f"rknn-toolkit2 is not installed in {python}: {last}")
    return Toolkit(python=python, version=proc.stdout.strip())
