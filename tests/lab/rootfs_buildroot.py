"""The root filesystem of the lab's RV1103/RV1106 boards: a 32-bit ARM busybox userland, built once and cached.

What an RV1106 camera board (Luckfox Pico class) runs is a Buildroot image: busybox's applets as the whole
userland, dropbear as the SSH server, root login, no sudo, no Python, uClibc, and Rockchip's files under
/oem/usr. Debian has no uClibc and no Buildroot, so this rootfs is made of Debian's armhf packages:

* `busybox-static` (a static binary, no libc needed): installed as the applets (`busybox --install -s`), so
  every command a probe or script runs is busybox's own, with busybox's options (no pgrep, flock or install
  in Debian's build: exactly the gaps rkdeploy's board scripts must cope with);
* `dropbear-bin` (the SSH server vendor images ship) and its armhf glibc libraries, extracted with
  `dpkg-deb -x` from packages `apt-get download`ed with a private apt state (this machine's apt
  configuration is not touched).

So the C library under dropbear is glibc armhf; the board's uClibc is a labelled lab stand-in added per
profile (fleet.py, `libc: uclibc`). The tarball is keyed by a hash of the recipe below.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .host import CACHE_DIR, LabError, require_root, run
from .rootfs import SUITE, cached_unpack, debian_mirror, pack

ARCH = "armhf"
PACKAGES = ["busybox-static", "dropbear-bin", "libc6", "libgcc-s1", "libcrypt1", "zlib1g", "libtomcrypt1",
            "libtommath1", "libgmp10"]
# Runs on the host, in the unpacked tree ($R); busybox runs under qemu-arm.
SETUP = r"""
set -e
cd "$R"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys tmp run var/log root etc/dropbear home oem/usr/bin oem/usr/lib userdata
chmod 1777 tmp
chmod 700 root
chroot "$R" /bin/busybox --install -s
ln -sfn ../run var/run
printf 'root:x:0:0:root:/root:/bin/sh\n' > etc/passwd
printf 'root:x:0:\nvideo:x:44:\nrender:x:105:\n' > etc/group
printf 'root:*:19000:0:99999:7:::\n' > etc/shadow
chmod 600 etc/shadow
printf '/bin/sh\n' > etc/shells
printf 'NAME=Buildroot\nVERSION=2023.02.6\nID=buildroot\nVERSION_ID=2023.02.6\nPRETTY_NAME="Buildroot 2023.02.6 (rkdeploy lab: busybox + dropbear from Debian armhf)"\n' > etc/os-release
rm -rf usr/share/doc usr/share/man usr/share/lintian usr/share/bug
"""
RECIPE_VERSION = "1"


def recipe_hash() -> str:
    text = "\n".join([RECIPE_VERSION, SUITE, ARCH, ",".join(PACKAGES), SETUP])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def tarball_path() -> Path:
    return CACHE_DIR / f"rootfs-buildroot-{ARCH}-{recipe_hash()}.tar.zst"


def ensure_binfmt() -> None:
    """qemu-arm registered with binfmt_misc, so 32-bit ARM programs run here (root login: no setuid entry)."""
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)])
    if not (misc / "qemu-arm").exists():
        run(["update-binfmts", "--enable", "qemu-arm"], check=False)
    if not (misc / "qemu-arm").exists():
        raise LabError("qemu-arm is not registered in binfmt_misc: apt-get install qemu-user-static binfmt-support")


def _download(dest: Path) -> list[Path]:
    """The packages' armhf .debs, with a private apt state under the cache (no dpkg --add-architecture)."""
    state = dest / "apt"
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    (state / "sources.list").write_text(f"deb [arch={ARCH}] {debian_mirror()} {SUITE} main\n")
    options = ["-o", f"Dir::State={state / 'state'}", "-o", f"Dir::State::status={state / 'status'}",
               "-o", f"Dir::Cache={state / 'cache'}", "-o", f"Dir::Etc::SourceList={state / 'sources.list'}",
               "-o", "Dir::Etc::SourceParts=/nonexistent", "-o", f"APT::Architecture={ARCH}",
               "-o", f"APT::Architectures::={ARCH}", "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]
    run(["apt-get", *options, "-qq", "update"])
    debs = dest / "debs"
    debs.mkdir()
    subprocess.run(["apt-get", *options, "-qq", "download", *PACKAGES], cwd=debs, check=True,
                   stdout=subprocess.DEVNULL)
    found = sorted(debs.glob("*.deb"))
    if len(found) != len(PACKAGES):
        raise LabError(f"downloading the armhf packages gave {len(found)} of {len(PACKAGES)}: {found}")
    return found


def build(dest: Path) -> None:
    require_root()
    ensure_binfmt()
    work = dest.with_suffix(".build")
    shutil.rmtree(work, ignore_errors=True)
    root = work / "root"
    root.mkdir(parents=True)
    started = time.monotonic()
    print(f"building the busybox armhf rootfs into {work}", file=sys.stderr)
    for deb in _download(work):
        run(["dpkg-deb", "-x", str(deb), str(root)])
    subprocess.run(["sh", "-c", SETUP], env={"R": str(root), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, check=True)
    pack(root, dest)
    shutil.rmtree(work, ignore_errors=True)
    print(f"busybox armhf rootfs built in {time.monotonic() - started:.0f} s: {dest}", file=sys.stderr)


def ensure_unpacked() -> Path:
    """The rootfs unpacked next to its tarball: the read-only lower layer of every RV1106 board."""
    return cached_unpack(tarball_path(), build)


if __name__ == "__main__":
    print(ensure_unpacked())
