"""Small helpers for running host commands as root, shared by the lab modules."""
from __future__ import annotations

import os
import shutil
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


# The host tools the lab runs, each with the Debian package that has it (scripts/setup.sh installs them all).
LAB_TOOLS = {
    "ip": "iproute2", "tc": "iproute2", "unshare": "util-linux", "nsenter": "util-linux", "mount": "mount",
    "sshd": "openssh-server", "ssh-keygen": "openssh-client", "gcc": "gcc", "openssl": "openssl",
    "tar": "tar", "zstd": "zstd",
    # the stand-in librknnrt.so / rknn_server (tests/lab/sdk.py), for --native boards too
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu", "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf",
}
EMULATION_TOOLS = {      # only emulated (aarch64) boards need these: --native boards run the host's sshd
    "update-binfmts": "binfmt-support", "qemu-aarch64-static": "qemu-user-static", "debootstrap": "debootstrap",
}


def missing_tools(native: bool = False, path: str | None = None) -> dict[str, str]:
    """The lab's host tools not found on PATH (or `path`): tool -> the Debian package that provides it."""
    tools = dict(LAB_TOOLS) if native else {**LAB_TOOLS, **EMULATION_TOOLS}
    search = os.environ.get("PATH", "") if path is None else path
    return {tool: package for tool, package in tools.items() if shutil.which(tool, path=search) is None}


def preflight(native: bool = False, path: str | None = None) -> None:
    """Refuse to start a lab on a machine without its tools, saying exactly what to run (before anything is
    made, instead of a FileNotFoundError half-way through lab.up)."""
    missing = missing_tools(native, path)
    if not missing:
        return
    packages = " ".join(sorted(set(missing.values())))
    raise LabError(f"this machine lacks the lab's tools {', '.join(missing)} (not on PATH). Install them with "
                   f"`sudo bash scripts/setup.sh` (all of the lab's packages and the venv), or "
                   f"`sudo apt-get install {packages}`")
