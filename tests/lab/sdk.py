"""The SDK files on lab boards: Rockchip's own where they exist, labelled stand-ins where not.

Rockchip's rknn_server builds, start/restart scripts and the librknnrt.so files
they published are read from the one configurable place for Rockchip's files
(tests/rockchip_files.py: `RKDEPLOY_ROCKCHIP_DIR`, default ../shared/rockchip).
What is absent there (the aarch64 librknnrt.so of 1.5.0 and later; every file
on a machine without Rockchip's files) is compiled here as a labelled stand-in
(standins/*.c) carrying the real version strings, and whole stand-in SDK trees
can be laid out in Rockchip's layouts (docs/sdk-releases.md). lite2 wheels are
always the real ones (the SDK tree's, or the package index's).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from tests import rockchip_files

from .host import CACHE_DIR, LabError, run

STANDINS = Path(__file__).parent / "standins"
CROSS_CC = {"aarch64": "aarch64-linux-gnu-gcc", "armhf": "arm-linux-gnueabihf-gcc"}


@dataclass(frozen=True)
class Release:
    version: str
    runtime_id: str   # what follows the version in "librknnrt version: V (...)"
    server_id: str    # what follows the version in the server banner

    @property
    def runtime_string(self) -> str:
        return f"{self.version} ({self.runtime_id})"

    @property
    def server_string(self) -> str:
        return f"{self.version} ({self.server_id})"

    @property
    def modern_layout(self) -> bool:
        return Version(self.version) >= Version("1.6.0")

    @property
    def server_has_version_prefix(self) -> bool:
        return Version(self.version) >= Version("1.5.2")


# Build ids as Rockchip's binaries of the release carry them (for 1.5.2 and 1.6.0: their armhf build, the
# aarch64 one being absent); where none was recorded the id is visibly synthetic (all zeros).
RELEASES = {r.version: r for r in [
    Release("1.4.0", "3b4520e4f@2022-09-05T20:48:50", "0000000 build: 2022-09-05 20:40:00"),
    Release("1.5.0", "e6fe0c678@2023-05-25T08:09:53", "17e11b1 build: 2023-05-18 21:43:39"),
    Release("1.5.2", "c6b7b351a@2023-08-23T15:29:04", "8babfea build@2023-08-25T10:30:31"),
    Release("1.6.0", "9a7b5d24c@2023-12-13T17:32:13", "535b468 build@2023-12-11T17:05:07"),
    Release("2.2.0", "c195366594@2024-09-14T12:22:34", "3e10681 build@2024-09-06T10:26:49"),
    Release("2.3.2", "429f97ae6b@2025-04-09T09:09:27", "1842325 build@2025-03-30T09:54:34"),
]}

# lite2 is on the package index from 2.3.0 on (RKNN-NOTES.md §1).
LITE2_ON_INDEX = {"2.3.0", "2.3.2", "2.5.0"}


def release(version: str) -> Release:
    try:
        return RELEASES[version]
    except KeyError:
        raise LabError(f"the lab has no stand-in SDK {version}; known: {', '.join(RELEASES)}") from None


def _sources_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(STANDINS.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:10]


def compile_runtime(rel: Release, arch: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    run([CROSS_CC[arch], "-shared", "-fPIC", "-O2", "-s", f"-DRT_VERSION=\"{rel.runtime_string}\"",
         "-o", str(out), str(STANDINS / "librknnrt.c")])


def dtmap_library() -> Path:
    """LAB ADAPTATION: the aarch64 preload library that maps /proc/device-tree to /sys/firmware/devicetree/base
    on emulated boards (tests/lab/standins/dtmap.c), compiled once per source revision."""
    src = STANDINS / "dtmap.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    out = CACHE_DIR / "bin" / f"libdtmap-{digest}.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}")    # boards are prepared in threads
        run([CROSS_CC["aarch64"], "-shared", "-fPIC", "-O2", "-s", "-Wall", "-o", str(tmp), str(src), "-ldl"])
        tmp.rename(out)
    return out


def compile_server(rel: Release, arch: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-DMODERN_VERSION_STRING"] if rel.server_has_version_prefix else []
    run([CROSS_CC[arch], "-O2", "-s", *flags, f"-DSERVER_VERSION=\"{rel.server_string}\"",
         "-o", str(out), str(STANDINS / "rknn_server.c")])
    for script in ("start_rknn.sh", "restart_rknn.sh"):
        shutil.copy(STANDINS / script, out.parent / script)
        (out.parent / script).chmod(0o755)


def _header(name: str, rel: Release) -> str:
    return (f"/* RKDEPLOY LAB STAND-IN for Rockchip's {name} (SDK {rel.version}); declarations only. */\n"
            f"#ifndef _RKDEPLOY_STANDIN_{name.upper().replace('.', '_')}\n"
            f"#define _RKDEPLOY_STANDIN_{name.upper().replace('.', '_')}\n"
            "#include <stdint.h>\ntypedef uint64_t rknn_context;\n"
            "int rknn_init(rknn_context *ctx, void *model, uint32_t size, uint32_t flag, void *extend);\n"
            "int rknn_destroy(rknn_context ctx);\n#endif\n")


def download_lite2(version: str, python_tag: str, dest: Path) -> list[Path]:
    """The real rknn-toolkit-lite2 wheel (no dependencies): from the local wheel cache that `python -m
    tests.wheels` fills, else from the package index; with RKDEPLOY_NO_INDEX=1 (scripts/test.sh sets it once
    the cache is filled) from the cache only."""
    from tests.wheels import WHEELS

    dest.mkdir(parents=True, exist_ok=True)
    pyver = f"{python_tag[2]}.{python_tag[3:]}"
    local = ["--find-links", str(WHEELS)] + (["--no-index"] if os.environ.get("RKDEPLOY_NO_INDEX") == "1" else [])
    run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", *local,
         "--platform", "manylinux2014_aarch64", "--python-version", pyver,
         f"rknn-toolkit-lite2=={version}", "-d", str(dest)])
    return sorted(dest.glob("rknn_toolkit_lite2-*.whl"))


def build_tree(version: str, dest: Path, python_tags: tuple[str, ...] = ("cp311",)) -> Path:
    """Lay out a stand-in SDK tree for `version` under dest (a fresh directory)."""
    rel = release(version)
    dest.mkdir(parents=True)
    (dest / "RKDEPLOY-LAB-STANDIN.txt").write_text(
        "This SDK tree was generated by rkdeploy's board lab. librknnrt.so, rknn_server and the\n"
        "headers are stand-ins carrying Rockchip's version strings; they are not Rockchip's files.\n")
    if rel.modern_layout:
        api = dest / "rknpu2/runtime/Linux/librknn_api"
        server = dest / "rknpu2/runtime/Linux/rknn_server"
        headers = ["rknn_api.h", "rknn_matmul_api.h", "rknn_custom_op.h"]
        lite2 = dest / ("rknn-toolkit-lite2" if Version(version) >= Version("2.0.0b0") else "rknn_toolkit_lite2") / "packages"
        runtime_dirs = [api]
    else:
        api = dest / "runtime/RK3588/Linux/librknn_api"
        server = dest / "runtime/RK3588/Linux/rknn_server"
        headers = ["rknn_api.h"] + (["rknn_matmul_api.h"] if Version(version) >= Version("1.5.0") else [])
        lite2 = dest / "rknn_toolkit_lite2/packages"
        runtime_dirs = [api, dest / "runtime/RK356X/Linux/librknn_api"]
    for arch in CROSS_CC:
        compile_runtime(rel, arch, api / arch / "librknnrt.so")
        compile_server(rel, arch, server / arch / "usr/bin/rknn_server")
    for other in runtime_dirs[1:]:
        shutil.copytree(api, other)
    (api / "include").mkdir(parents=True, exist_ok=True)
    for name in headers:
        (api / "include" / name).write_text(_header(name, rel))
    lite2.mkdir(parents=True, exist_ok=True)
    if version in LITE2_ON_INDEX:
        for tag in python_tags:
            download_lite2(version, tag, lite2)
    return dest


def cached_tree(version: str) -> Path:
    """A stand-in SDK tree, built once per version and stand-in source revision."""
    path = CACHE_DIR / "sdk" / f"rknn-sdk-{version}-standin-{_sources_hash()}"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Boards of one profile are prepared in parallel: one builds, the others wait for it.
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            tmp = path.with_name(path.name + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            build_tree(version, tmp)
            tmp.rename(path)
    return path


def standin_runtime(version: str, arch: str = "aarch64") -> Path:
    """A stand-in librknnrt.so of `version`, compiled once per stand-in source revision."""
    out = CACHE_DIR / "sdk" / f"standin-{_sources_hash()}" / version / arch / "librknnrt.so"
    if not out.exists():
        tmp = out.with_name(f".librknnrt.so.{os.getpid()}.{threading.get_ident()}")   # boards are prepared by threads
        compile_runtime(release(version), arch, tmp)
        tmp.rename(out)
    return out


# Rockchip's SDK tree folders by layout (docs/sdk-releases.md); {soc_dir} is RK3588 or RK356X.
_REAL_SERVER_DIRS = ("rknn-toolkit2-v{v}/rknpu2/runtime/Linux/rknn_server/{arch}/usr/bin",
                     "rknpu2-v{v}/runtime/{soc_dir}/Linux/rknn_server/{arch}/usr/bin")
_REAL_RUNTIMES = ("rknn-toolkit2-v{v}/rknpu2/runtime/Linux/librknn_api/{arch}/librknnrt.so",
                  "rknpu2-v{v}/runtime/{soc_dir}/Linux/librknn_api/{arch}/librknnrt.so")


def _soc_dir(soc: str) -> str:
    return "RK356X" if soc in ("rk3566", "rk3568") else "RK3588"


def real_server(version: str, arch: str = "aarch64", soc: str = "rk3588") -> Path | None:
    """Rockchip's rknn_server of `version` (an SDK tree's, else servers/<version>/), or None."""
    root = rockchip_files.rockchip_dir()
    for pattern in _REAL_SERVER_DIRS:
        path = root / "sdk-trees" / pattern.format(v=version, arch=arch, soc_dir=_soc_dir(soc)) / "rknn_server"
        if path.exists():
            return path
    path = root / "servers" / version / arch / "rknn_server"
    return path if path.exists() else None


def real_scripts() -> Path | None:
    """A folder with Rockchip's start_rknn.sh and restart_rknn.sh (the same in every release)."""
    trees = rockchip_files.rockchip_dir() / "sdk-trees"
    for script in sorted(trees.glob("*/**/aarch64/usr/bin/start_rknn.sh")) if trees.is_dir() else []:
        if (script.parent / "restart_rknn.sh").exists():
            return script.parent
    return None


def real_runtime(version: str, arch: str = "aarch64", soc: str = "rk3588") -> Path | None:
    root = rockchip_files.rockchip_dir() / "sdk-trees"
    for pattern in _REAL_RUNTIMES:
        path = root / pattern.format(v=version, arch=arch, soc_dir=_soc_dir(soc))
        if path.exists():
            return path
    return None


def board_runtime(version: str, arch: str = "aarch64", soc: str = "rk3588") -> tuple[Path, bool]:
    """The librknnrt.so a lab board of `version` gets, and whether it is Rockchip's own."""
    real = real_runtime(version, arch, soc)
    return (real, True) if real else (standin_runtime(version, arch), False)


def board_server(version: str, arch: str = "aarch64", soc: str = "rk3588") -> tuple[dict[str, Path], bool]:
    """rknn_server, start_rknn.sh and restart_rknn.sh for a lab board, and whether they are Rockchip's."""
    server, scripts = real_server(version, arch, soc), real_scripts()
    if server and scripts:
        return {"rknn_server": server, "start_rknn.sh": scripts / "start_rknn.sh",
                "restart_rknn.sh": scripts / "restart_rknn.sh"}, True
    folder = server_dir(cached_tree(version), arch)
    return {name: folder / name for name in ("rknn_server", "start_rknn.sh", "restart_rknn.sh")}, False


def runtime_file(tree: Path, arch: str = "aarch64") -> Path:
    modern = tree / "rknpu2/runtime/Linux/librknn_api" / arch / "librknnrt.so"
    return modern if modern.exists() else tree / "runtime/RK3588/Linux/librknn_api" / arch / "librknnrt.so"


def server_dir(tree: Path, arch: str = "aarch64") -> Path:
    modern = tree / "rknpu2/runtime/Linux/rknn_server" / arch / "usr/bin"
    return modern if modern.exists() else tree / "runtime/RK3588/Linux/rknn_server" / arch / "usr/bin"


if __name__ == "__main__":
    for v in sys.argv[1:]:
        print(cached_tree(v))
