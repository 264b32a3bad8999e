"""SDK bundles: the board-side files of one Rockchip SDK release, pinned by sha256, plus an offline
lite2 wheelhouse, under bundles/<version>/ (manifest in git, binaries and wheels not).

`import_sdk` reads an SDK tree in either of Rockchip's layouts (RKNN-NOTES.md §1):
1.4–1.5 `runtime/RK3588/Linux/...` and 1.6+ `rknpu2/runtime/Linux/...`.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .versions import parse_runtime, parse_server, same_release

ARCHES = ("aarch64", "armhf")
LAYOUTS = {
    "1.6+": ("rknpu2/runtime/Linux/librknn_api", "rknpu2/runtime/Linux/rknn_server"),
    "1.4-1.5": ("runtime/RK3588/Linux/librknn_api", "runtime/RK3588/Linux/rknn_server"),
}
LITE2_DIRS = ("rknn-toolkit-lite2/packages", "rknn_toolkit_lite2/packages")
# Where Rockchip's guides install each file on a Linux board (RKNN-NOTES.md §2).
DESTINATIONS = {"runtime": "/usr/lib/librknnrt.so", "server": "/usr/bin/rknn_server",
                "start_script": "/usr/bin/start_rknn.sh", "restart_script": "/usr/bin/restart_rknn.sh"}
WHEEL_TAG = re.compile(r"-(cp\d+)-cp\d+m?-")


class BundleError(ValueError):
    pass


@dataclass
class BundleFile:
    role: str          # runtime, server, start_script, restart_script, header
    arch: str          # aarch64, armhf, or "any" for headers
    path: str          # relative to the bundle's files/ directory
    dest: str          # where it goes on the board
    sha256: str
    size: int
    mode: str = "0644"
    version_string: str = ""


@dataclass
class Bundle:
    version: str
    root: Path
    layout: str
    files: list[BundleFile] = field(default_factory=list)
    wheels: dict[str, list[str]] = field(default_factory=dict)     # python tag -> wheel file names

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def wheelhouse(self) -> Path:
        return self.root / "wheelhouse"

    def for_arch(self, arch: str) -> list[BundleFile]:
        return [f for f in self.files if f.arch in (arch, "any")]

    def save(self) -> None:
        doc = {"version": self.version, "layout": self.layout,
               "files": [f.__dict__ for f in self.files], "wheels": self.wheels}
        (self.root / "bundle.yaml").write_text(
            f"# rkdeploy SDK bundle {self.version}: written by `inv bundle.import`; files/ and wheelhouse/ are not in git.\n"
            + yaml.safe_dump(doc, sort_keys=False))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_bundle(bundles_dir: Path, version: str) -> Bundle:
    root = bundles_dir / version
    manifest = root / "bundle.yaml"
    if not manifest.exists():
        have = ", ".join(list_versions(bundles_dir)) or "none"
        raise BundleError(f"no bundle {version} in {bundles_dir} (bundles: {have}); make one with "
                          "inv bundle.import SDK_PATH")
    doc = yaml.safe_load(manifest.read_text())
    return Bundle(version=doc["version"], root=root, layout=doc["layout"],
                  files=[BundleFile(**f) for f in doc["files"]], wheels=doc.get("wheels") or {})


def list_versions(bundles_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in bundles_dir.glob("*/bundle.yaml"))


def verify(bundle: Bundle) -> list[str]:
    """Every file present and intact; one line per problem, naming the file."""
    problems = []
    entries = [(bundle.files_dir / f.path, f.sha256, f.size) for f in bundle.files]
    for tag, wheels in bundle.wheels.items():
        for w in wheels:
            entries.append((bundle.wheelhouse / tag / w, None, None))
    for path, sha, size in entries:
        if not path.exists():
            problems.append(f"{path}: missing")
        elif size is not None and path.stat().st_size != size:
            problems.append(f"{path}: truncated or grown ({path.stat().st_size} bytes, manifest says {size})")
        elif sha is not None and sha256_of(path) != sha:
            problems.append(f"{path}: content changed (sha256 differs from the manifest)")
    return problems


def _detect_layout(tree: Path) -> str:
    for name, (api, server) in LAYOUTS.items():
        if (tree / api).is_dir() and (tree / server).is_dir():
            return name
    raise BundleError(f"{tree} is not an RKNN SDK tree: expected rknpu2/runtime/Linux/librknn_api and "
                      "rknpu2/runtime/Linux/rknn_server (SDK 1.6 and later) or runtime/RK3588/Linux/librknn_api "
                      "and runtime/RK3588/Linux/rknn_server (SDK 1.4–1.5), as in an rknn-toolkit2 checkout")


def _read_strings(path: Path) -> str:
    data = path.read_bytes()
    return "\n".join(m.decode("ascii", "replace") for m in re.findall(rb"[\x20-\x7e]{6,}", data))


def import_sdk(tree: Path, bundles_dir: Path, python_tags: list[str], log=print) -> Bundle:
    tree = tree.expanduser().resolve()
    if not tree.is_dir():
        raise BundleError(f"{tree}: no such directory")
    layout = _detect_layout(tree)
    api_rel, server_rel = LAYOUTS[layout]
    found: list[tuple[str, str, Path, str]] = []      # role, arch, source, version string
    versions: list[tuple[str, str, Path]] = []        # what, release, source
    for arch in ARCHES:
        bindir = tree / server_rel / arch / "usr/bin"
        for role, label, path, parse in (("runtime", "librknnrt", tree / api_rel / arch / "librknnrt.so", parse_runtime),
                                         ("server", "rknn_server", bindir / "rknn_server", parse_server)):
            if path.exists():
                v = parse(_read_strings(path))
                if v is None:
                    raise BundleError(f"{path}: no {label} version string: not Rockchip's {label}?")
                found.append((role, arch, path, v.raw))
                versions.append((label, v.release, path))
        if (bindir / "rknn_server").exists():
            for role, name in (("start_script", "start_rknn.sh"), ("restart_script", "restart_rknn.sh")):
                if (bindir / name).exists():
                    found.append((role, arch, bindir / name, ""))
    if not versions:
        raise BundleError(f"{tree}: the SDK tree holds no librknnrt.so or rknn_server for {', '.join(ARCHES)}")
    release = versions[0][1]
    mixed = [v for v in versions if not same_release(v[1], release)]
    if mixed:
        listing = "; ".join(f"{what} {rel} ({src.relative_to(tree)})" for what, rel, src in versions)
        raise BundleError(f"{tree}: mixed versions inside one SDK tree: {listing}")
    root = bundles_dir / release
    staging = bundles_dir / f".{release}.importing"
    shutil.rmtree(staging, ignore_errors=True)
    bundle = Bundle(version=release, root=staging, layout=layout)
    for role, arch, src, vstring in found:
        rel = f"{arch}/{src.name}"
        dest = bundle.files_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        bundle.files.append(BundleFile(role=role, arch=arch, path=rel, dest=DESTINATIONS[role], sha256=sha256_of(dest),
                                       size=dest.stat().st_size, mode="0644" if role == "runtime" else "0755",
                                       version_string=vstring))
    for header in sorted((tree / api_rel / "include").glob("*.h")):
        dest = bundle.files_dir / "include" / header.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(header, dest)
        bundle.files.append(BundleFile(role="header", arch="any", path=f"include/{header.name}",
                                       dest=f"/usr/include/{header.name}", sha256=sha256_of(dest),
                                       size=dest.stat().st_size))
    sdk_wheels = [w for d in LITE2_DIRS for w in (tree / d).glob("rknn_toolkit_lite2-*.whl")
                  if same_release(w.name.split("-")[1], release)]
    for tag in python_tags:
        _build_wheelhouse(bundle, release, tag, sdk_wheels, log)
    bundle.save()
    shutil.rmtree(root, ignore_errors=True)      # a re-import replaces the bundle as a whole
    staging.rename(root)
    bundle.root = root
    return bundle


def _build_wheelhouse(bundle: Bundle, release: str, tag: str, sdk_wheels: list[Path], log) -> None:
    """lite2 for one Python tag, with its aarch64 dependencies and a current pip, for offline installs."""
    house = bundle.wheelhouse / tag
    house.mkdir(parents=True, exist_ok=True)
    pyver = f"{tag[2]}.{tag[3:]}"
    local = [w for w in sdk_wheels if WHEEL_TAG.search(w.name) and WHEEL_TAG.search(w.name).group(1) == tag]
    for w in local:
        shutil.copy2(w, house / w.name)
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--platform",
            "manylinux2014_aarch64", "--python-version", pyver, "-d", str(house)]
    if local:
        spec = [str(house / local[0].name)]
    else:
        spec = [f"rknn-toolkit-lite2=={release}"]
    log(f"bundle {release}: wheelhouse for {tag} ({'SDK wheel' if local else 'package index'}) …")
    proc = subprocess.run(base + spec + ["pip"], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(house, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        log(f"bundle {release}: no lite2 for {tag}: {last}")
        return
    bundle.wheels[tag] = sorted(p.name for p in house.iterdir() if p.suffix == ".whl")
