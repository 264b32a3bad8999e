"""The PC's rknn-toolkit2, which lives in its own virtualenv and is only ever run as a subprocess.

`import rknn.api` pulls in torch (seconds, gigabytes); its version is read with
importlib.metadata in the toolkit's own Python instead (RKNN-NOTES.md §1). Its bundled adb is found the
same way, from the real package's layout (docs/toolkit-and-adb.md §1): `rknn` is a namespace package (no
__init__.py, find_spec('rknn').origin is None) and adb is at
`<submodule_search_locations[0]>/3rdparty/platform-tools/adb/<os>-<arch>/adb`.

The environment itself is a pinned, tested set (toolkit_constraints/VERSION.txt), installed by
`inv perf.setup` and cached by the hash of that file.
"""
from __future__ import annotations

import re

import json

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from .versions import release_of

CONSTRAINTS_DIR = Path(__file__).with_name("toolkit_constraints")
ADB_IN_PACKAGE = "3rdparty/platform-tools/adb/{os}-{arch}/adb"

_READ_VERSION = "import importlib.metadata as m; print(m.version('rknn-toolkit2'))"

# Run in the toolkit's Python: where Rockchip's package keeps its adb. No import of rknn (torch).
_FIND_ADB = r"""
import importlib.util, os, platform, sys
spec = importlib.util.find_spec('rknn')
if spec is None:
    sys.exit('no package rknn importable')
roots = list(spec.submodule_search_locations or [])
if spec.origin and os.path.basename(spec.origin) == '__init__.py':
    roots.append(os.path.dirname(spec.origin))
rel = %r.format(os='linux' if sys.platform.startswith('linux') else sys.platform, arch=platform.machine())
tried = [os.path.join(r, rel) for r in roots]
for path in tried:
    if os.path.isfile(path):
        print(path)
        sys.exit(0)
sys.exit('not at ' + ' or '.join(tried) or '(rknn has no search location)')
""" % ADB_IN_PACKAGE


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


def toolkit_adb(python: str, timeout: float = 60.0) -> str:
    """The adb bundled with the toolkit, which the toolkit always runs (never whatever adb is on PATH)."""
    try:
        proc = subprocess.run([python, "-c", _FIND_ADB], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolkitError(f"could not ask {python} where rknn-toolkit2 keeps its adb: {e}") from None
    path = proc.stdout.strip()
    if proc.returncode != 0 or not path:
        why = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise ToolkitError(f"no adb inside the rknn-toolkit2 of {python}: {why}")
    if not os.access(path, os.X_OK):
        raise ToolkitError(f"the toolkit's adb {path} is not executable (chmod +x it, or reinstall: inv perf.setup)")
    return path


# -- the toolkit's own environment ------------------------------------------------------------------------------

def constraints_file(version: str) -> Path:
    path = CONSTRAINTS_DIR / f"{version}.txt"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in CONSTRAINTS_DIR.glob("*.txt"))) or "none"
        raise ToolkitError(f"no tested package set for rknn-toolkit2 {version} (tested: {have}); "
                           f"point perf.toolkit_python at an environment you made yourself")
    return path


def pinned(version: str) -> list[str]:
    """The package==version lines of the tested set (what perf.setup installs), comments left out."""
    return [line.split("#", 1)[0].strip() for line in constraints_file(version).read_text().splitlines()
            if line.split("#", 1)[0].strip()]


def env_key(version: str) -> str:
    """Names the cached environment: the toolkit version and the hash of its pinned package set."""
    return f"toolkit-{version}-{hashlib.sha256(constraints_file(version).read_bytes()).hexdigest()[:12]}"


@dataclass
class SetupResult:
    venv: Path
    python: Path
    reused: bool
    seconds: float
    megabytes: float


def ensure_env(version: str, venv: Path, *, python: str | None = None, log=None) -> SetupResult:
    """A virtualenv at `venv` holding exactly toolkit_constraints/VERSION.txt, checked to import the toolkit
    and to carry its adb. Reused when its stamp names the same package set; rebuilt otherwise."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    pins = constraints_file(version)
    key = env_key(version)
    stamp = venv / ".rkdeploy-complete"
    started = time.monotonic()
    if stamp.exists() and stamp.read_text().strip() == key and (venv / "bin/python").exists():
        return SetupResult(venv, venv / "bin/python", True, 0.0, _size_mb(venv))
    shutil.rmtree(venv, ignore_errors=True)          # no stamp: absent, another package set, or half made
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = python or getattr(sys, "_base_executable", None) or sys.executable
    _step(log, f"creating the virtualenv {venv}", [base, "-m", "venv", str(venv)])
    # --no-deps with every package pinned: the toolkit's own torch<=2.4.0 pin would make pip refuse torch 2.13
    # (see the comments in the constraints file).
    _step(log, f"installing {pins} with --no-deps: {', '.join(pinned(version))}",
          [str(venv / "bin/python"), "-m", "pip", "install", "--no-deps", "--no-input", "-q", "-r", str(pins)])
    _step(log, "checking that the toolkit imports (from rknn.api import RKNN; RKNN())",
          [str(venv / "bin/python"), "-c", "from rknn.api import RKNN; RKNN(verbose=False)"])
    toolkit_adb(str(venv / "bin/python"))
    stamp.write_text(key + "\n")
    return SetupResult(venv, venv / "bin/python", False, time.monotonic() - started, _size_mb(venv))


def _step(log, what: str, argv: list[str]) -> None:
    log(f"perf.setup: {what}")
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolkitError(f"{what} failed ({proc.returncode}):\n{tail}")


def _size_mb(path: Path) -> float:
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() or f.is_symlink()) / 2 ** 20


def main(argv: list[str] | None = None) -> int:
    """`python -m rkdeploy.toolkit VERSION [VENV]`: make (or reuse) the cached environment and print its
    python on stdout, for scripts (scripts/test.sh); progress on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    version = args[0] if args else "2.3.2"
    cache = Path(os.environ.get("RKDEPLOY_CACHE", Path.home() / ".cache" / "rkdeploy"))
    venv = Path(args[1]) if len(args) > 1 else cache / env_key(version)
    try:
        result = ensure_env(version, venv)
    except ToolkitError as e:
        print(f"rkdeploy.toolkit: {e}", file=sys.stderr)
        return 1
    print(f"rknn-toolkit2 {version}: {result.venv} ({result.megabytes:.0f} MB, "
          + ("reused" if result.reused else f"installed in {result.seconds:.0f} s") + ")", file=sys.stderr)
    print(result.python)
    return 0


if __name__ == "__main__":
    sys.exit(main())


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def toolkit_errors(log: str) -> list[str]:
    """The toolkit's and its runtime's own error lines (`E …`), without colour codes, first seen first; the
    closing `E rknn-toolkit2 version: …` of its warning summary is not an error."""
    found: list[str] = []
    for line in _ANSI.sub("", log).splitlines():
        line = line.strip()
        if (line.startswith("E ") and not line.startswith("E rknn-toolkit2 version")
                and not line.endswith("Traceback (most recent call last):") and line not in found):
            found.append(line if len(line) < 300 else line[:297] + "...")
    return found


def run_json_worker(argv: list[str], request: dict, timeout: float, env: dict | None = None) -> dict:
    """Run a worker script in the toolkit's Python (perf_worker.py, convert_worker.py): the request as JSON on
    its stdin, its result as the last JSON line of its stdout (the toolkit's console output is in its `log`)."""
    try:
        proc = subprocess.run(argv, input=json.dumps(request), capture_output=True, text=True, timeout=timeout,
                              env={**(env or os.environ), "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "timeout", "error": f"the toolkit did not finish within {timeout:g} s",
                "log": ""}
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        return json.loads(line)
    except ValueError:
        return {"ok": False, "stage": "worker", "error": f"the worker crashed (exit {proc.returncode}) without a result",
                "log": proc.stdout + proc.stderr}
