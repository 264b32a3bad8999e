"""The boards' shared root filesystem: Debian bookworm arm64, built once and cached.

The tarball is keyed by a hash of the recipe below, so changing the package
list or the setup script builds a new one while old caches stay untouched.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .host import CACHE_DIR, LabError, require_root, run

SUITE = "bookworm"
# What a vendor Debian/Ubuntu board image has and the tool relies on. Python.h
# and gcc are deliberately absent: boards in the field usually lack them.
PACKAGES = [
    "openssh-server", "python3", "python3-venv", "python3-pip", "sudo", "procps",
    "psmisc", "iproute2", "ca-certificates", "kmod", "less",
    # Rockchip's rknn_server runs `strings librknnrt.so` to read the runtime's version (a profile can
    # remove it again to be a board without binutils).
    "binutils",
]
# Runs inside the new root (under qemu) once debootstrap is done.
SETUP = r"""
set -e
groupadd -f render
useradd -m -s /bin/bash -G sudo,video,render rock
usermod -p '*' rock
echo 'rock ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/rock
chmod 0440 /etc/sudoers.d/rock
rm -f /etc/ssh/ssh_host_*
mkdir -p /run/sshd /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/lab.conf <<'CONF'
# rkdeploy lab board: key-only logins, one host key per board.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
UseDNS no
MaxStartups 100:30:200
CONF
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
"""
RECIPE_VERSION = "1"


def recipe_hash() -> str:
    text = "\n".join([RECIPE_VERSION, SUITE, ",".join(PACKAGES), SETUP])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def tarball_path() -> Path:
    return CACHE_DIR / f"rootfs-{SUITE}-arm64-{recipe_hash()}.tar.zst"


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (never a hard-coded host)."""
    for source in [*Path("/etc/apt/sources.list.d").glob("*.sources"), Path("/etc/apt/sources.list")]:
        if not source.exists():
            continue
        text = source.read_text()
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
        for line in text.splitlines():
            m = re.match(rf"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if m:
                return m.group(1)
    raise LabError("no Debian bookworm mirror configured in /etc/apt (needed to build the board rootfs)")


def ensure_binfmt() -> None:
    """qemu-aarch64 registered with binfmt_misc, so arm64 programs run here."""
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)])
    if not (misc / "qemu-aarch64").exists():
        run(["update-binfmts", "--enable", "qemu-aarch64"])
    if not (misc / "qemu-aarch64").exists():
        raise LabError("qemu-aarch64 is not registered in binfmt_misc: apt-get install qemu-user-static binfmt-support")


def build(dest: Path) -> None:
    require_root()
    ensure_binfmt()
    work = dest.with_suffix(".build")
    _discard(work)
    work.mkdir(parents=True)
    started = time.monotonic()
    print(f"building arm64 rootfs ({SUITE}, minbase) into {work}; takes a few minutes once", file=sys.stderr)
    try:
        run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(work), debian_mirror()], capture=False)
        run(["chroot", str(work), "/bin/sh", "-c", SETUP], capture=False)
        pack(work, dest)
    finally:
        _discard(work)
    print(f"rootfs built in {time.monotonic() - started:.0f} s: {dest}", file=sys.stderr)


def _discard(work: Path) -> None:
    """Remove an earlier, interrupted build: debootstrap mounts /proc (and more) inside its target, and a build
    that was killed leaves those mounts behind; unmount them (deepest first) before removing the tree."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m == str(work) or m.startswith(f"{work}/")), key=len, reverse=True):
        run(["umount", "-l", point], check=False)
    shutil.rmtree(work, ignore_errors=True)


def pack(tree: Path, dest: Path) -> None:
    """A root filesystem tree into a .tar.zst, written beside and renamed into place (never half a tarball)."""
    tmp = dest.with_name(dest.name + ".part")
    with open(tmp, "wb") as out:
        tar = subprocess.Popen(["tar", "-C", str(tree), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
        zstd = subprocess.run(["zstd", "-q", "-T0", "-10"], stdin=tar.stdout, stdout=out)
        tar.stdout.close()
        if tar.wait() != 0 or zstd.returncode != 0:
            raise LabError(f"packing the rootfs into {dest} failed")
    tmp.rename(dest)


@contextlib.contextmanager
def _cache_lock(name: str):
    """One builder or unpacker of a rootfs at a time, across processes (the demo, the suite and benchmarks share
    the cache)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached_unpack(tarball: Path, build_into) -> Path:
    """`tarball` unpacked next to it (built first with `build_into(tarball)` when missing): the shared read-only
    lower layer of the boards. Once unpacked, the tarball is no longer needed."""
    root = tarball.with_name(tarball.name.removesuffix(".tar.zst"))
    done = root / ".rkdeploy-unpacked"
    if done.exists():
        return root
    with _cache_lock(root.name):
        if not done.exists():
            if not tarball.exists():
                build_into(tarball)
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            run(["tar", "-C", str(root), "--numeric-owner", "-I", "zstd", "-xf", str(tarball)])
            done.touch()
    return root


def ensure_unpacked() -> Path:
    """The Debian arm64 rootfs every emulated aarch64 board shares."""
    return cached_unpack(tarball_path(), build)


if __name__ == "__main__":
    print(ensure_unpacked())
