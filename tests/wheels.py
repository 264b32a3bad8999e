"""The one place the test suite reaches the package index: `python -m tests.wheels` (scripts/test.sh runs it
after setup and before pytest) downloads every package a test installs or imports into a bundle into one
local wheel cache, `$RKDEPLOY_CACHE/wheels` (default ~/.cache/rkdeploy/wheels). The tests then take packages
from there only, with `pip … --no-index --find-links <cache>` (`offline()`; `inv bundle.import --pip-options`
passes the same), so a test run never depends on the index being reachable or unchanged mid-run.

What is fetched (the tests that use it):
- rknn-toolkit2 2.3.2, the PC wheel without its dependencies: the real adb inside it (tests/unit/test_adbd.py)
  and its metadata (tests/e2e/conftest.py `toolkit_python`);
- rknn-toolkit-lite2 of each release the lab's stand-in SDK trees carry (tests/lab/sdk.py LITE2_ON_INDEX),
  for aarch64 cp311, with its dependencies and a current pip: what `bundle.import` puts in a wheelhouse
  (tests/unit/test_bundle.py, the e2e `bundles` fixture, tests/e2e/test_provision.py);
- the dependencies of the lite2 wheels inside Rockchip's SDK trees, when RKDEPLOY_ROCKCHIP_DIR has them
  (tests/e2e/test_real_sdk.py, the e2e `bundles` fixture);
- setuptools, to build the lab's stand-in toolkit without build isolation reaching the index.

Each set is fetched once (a stamp per set); rerunning without a network keeps what is there.
The real rknn-toolkit2 environment of the toolkit tests is made by scripts/test.sh too, before pytest
(`python -m rkdeploy.toolkit 2.3.2`), not by a test.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("RKDEPLOY_CACHE", Path.home() / ".cache" / "rkdeploy"))
WHEELS = CACHE / "wheels"
BOARD_PYTHON = "3.11"            # the lab boards' Debian bookworm python
AARCH64 = ["--only-binary=:all:", "--platform", "manylinux2014_aarch64", "--platform", "linux_aarch64",
           "--python-version", BOARD_PYTHON, "--implementation", "cp"]


def offline() -> list[str]:
    """pip options that take packages from the local wheel cache only."""
    return ["--no-index", "--find-links", str(WHEELS)]


def offline_text() -> str:
    """The same, as one `--pip-options` value for `inv bundle.import`."""
    return " ".join(offline())


def missing_hint(what: str) -> str:
    return (f"{what} is not in the local wheel cache {WHEELS}: `python -m tests.wheels` (scripts/test.sh runs "
            "it before pytest) fetches it")


def sets() -> dict[str, list[str]]:
    """name -> pip download arguments."""
    from tests import rockchip_files
    from tests.lab.sdk import LITE2_ON_INDEX

    out = {"rknn-toolkit2-2.3.2 (PC wheel, no dependencies)": ["--no-deps", "rknn-toolkit2==2.3.2"],
           "setuptools (builds the stand-in toolkit)": ["setuptools>=64", "wheel"]}
    for version in sorted(LITE2_ON_INDEX):
        out[f"rknn-toolkit-lite2 {version} aarch64 cp311 + dependencies + pip"] = [*AARCH64, "pip",
                                                                                   f"rknn-toolkit-lite2=={version}"]
    try:
        trees = rockchip_files.sdk_trees()
    except Exception:  # noqa: BLE001 - no Rockchip folder: nothing of it to fetch for
        trees = []
    from rkdeploy.bundle import _requires

    for tree in trees:
        for wheel in sorted(Path(tree).rglob("rknn_toolkit_lite2-*-cp311-*.whl")):
            out[f"dependencies of {wheel.name}"] = [*AARCH64, "pip", *_requires(wheel)]
    return out


def prefetch() -> int:
    WHEELS.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name, args in sets().items():
        stamp = WHEELS / f".fetched-{hashlib.sha256(repr(args).encode()).hexdigest()[:16]}"
        if stamp.exists():
            continue
        print(f"tests.wheels: fetching {name}", file=sys.stderr)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                               "-d", str(WHEELS), *args], capture_output=True, text=True, timeout=1800)
        if done.returncode == 0:
            stamp.write_text(name + "\n")
        else:
            failed += 1
            print(f"tests.wheels: could not fetch {name}: {(done.stderr or done.stdout).strip()[-800:]}",
                  file=sys.stderr)
    print(WHEELS)
    return failed


if __name__ == "__main__":
    sys.exit(1 if prefetch() else 0)
