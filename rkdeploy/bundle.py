"""SDK bundles: the board-side files of one Rockchip SDK release, pinned by sha256, plus an offline
lite2 wheelhouse, under bundles/<version>/ (manifest in git, binaries and wheels not).

`import_sdk` reads an SDK tree in either of Rockchip's layouts (docs/sdk-releases.md): the 1.4–1.5
rknpu2 repository (`runtime/RK3588|RK356X|RV1106/Linux/...`, one build per SoC family) and the 1.6+
rknn-toolkit2 repository (`rknpu2/runtime/Linux/...`), for the architectures aarch64, armhf and
armhf-uclibc (RV1103/RV1106's mini runtime librknnmrt.so under /oem/usr). What a tree lacks (the aarch64
librknnrt.so of 1.5.x and later, for one) is recorded per architecture in the manifest's `parts`, and
provision refuses a board whose architecture or SoC family the bundle has no runtime for.

A manifest is read back as untrusted input: every value is checked before anything uses it.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .socs import family_of
from .versions import parse_runtime, parse_server, release_of, same_release

ARCHES = ("aarch64", "armhf", "armhf-uclibc")
GLIBC_ARCHES = ("aarch64", "armhf")          # headers are installed on these only
# SoCs whose boards run the uclibc mini runtime (librknnmrt.so) under /oem/usr (docs/sdk-releases.md).
UCLIBC_SOCS = (*family_of("rv1106"), *family_of("rv1106b"))
LAYOUTS = {
    "1.6+": ("rknpu2/runtime/Linux/librknn_api", "rknpu2/runtime/Linux/rknn_server"),
    "1.4-1.5": ("runtime/RK3588/Linux/librknn_api", "runtime/RK3588/Linux/rknn_server"),
}
# 1.4–1.5: one folder per SoC family under runtime/; RV1106 holds the armhf-uclibc build (server under arm/).
SOC_DIRS = {"RK3588": family_of("rk3588"), "RK356X": family_of("rk3566"), "RV1106": ()}
LITE2_DIRS = ("rknn-toolkit-lite2/packages", "rknn_toolkit_lite2/packages")
# Where Rockchip's guides install each file on a Linux board (docs/sdk-releases.md).
DESTINATIONS = {"runtime": "/usr/lib/librknnrt.so", "server": "/usr/bin/rknn_server",
                "start_script": "/usr/bin/start_rknn.sh", "restart_script": "/usr/bin/restart_rknn.sh"}
UCLIBC_DESTINATIONS = {"runtime": "/oem/usr/lib/librknnmrt.so", "server": "/oem/usr/bin/rknn_server",
                       "start_script": "/oem/usr/bin/start_rknn.sh", "restart_script": "/oem/usr/bin/restart_rknn.sh"}
ROLES = ("runtime", "server", "start_script", "restart_script", "header")
SCRIPTS = {"start_script": "start_rknn.sh", "restart_script": "restart_rknn.sh"}
# What a complete bundle has per architecture (lite2 exists for aarch64 only).
EXPECTED_PARTS = {"aarch64": ("runtime", "server", "scripts", "headers", "lite2"),
                  "armhf": ("runtime", "server", "scripts", "headers"),
                  "armhf-uclibc": ("runtime", "server", "scripts")}
ALLOWED_DEST_DIRS = ("/usr/lib", "/usr/bin", "/usr/include", "/oem/usr/lib", "/oem/usr/bin", "/etc/systemd/system")
MODES = ("0644", "0755")
WHEEL_TAG = re.compile(r"-(cp\d+)-(?:cp\d+m?|abi3|none)-")
_PLAIN_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}(?:(?:a|b|rc)[0-9]+)?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WHEEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\.(?:whl|tar\.gz|zip)")
_PY_TAG = re.compile(r"cp[0-9]{2,3}")
_SOC_NAME = re.compile(r"[a-z0-9]{2,16}")


class BundleError(ValueError):
    pass


@dataclass
class BundleFile:
    role: str          # runtime, server, start_script, restart_script, header
    arch: str          # aarch64, armhf, armhf-uclibc, or "any" for headers
    path: str          # relative to the bundle's files/ directory
    dest: str          # where it goes on the board
    sha256: str
    size: int
    mode: str = "0644"
    version_string: str = ""
    socs: list[str] = field(default_factory=list)     # the SoCs this build is for; empty: any SoC


def lib_name(arch: str) -> str:
    return "librknnmrt.so" if arch == "armhf-uclibc" else "librknnrt.so"


def board_arch(arch: str, soc: str = "", libc: str = "") -> str:
    """The bundle architecture a board uses: an armhf board whose C library is uClibc runs armhf-uclibc; one
    whose libc the probe could not tell does when its SoC is an RV1103/RV1106 (their Buildroot images)."""
    if arch not in ("armhf", "armhf-uclibc"):
        return arch
    if libc == "uclibc" or (not libc and (arch == "armhf-uclibc" or soc in UCLIBC_SOCS)):
        return "armhf-uclibc"
    return "armhf"


def libc_mismatch(arch: str, soc: str = "", libc: str = "") -> str:
    """Why no file of a bundle fits this armhf board's C library and SoC ("" when files can fit)."""
    key = board_arch(arch, soc, libc)
    if key == "armhf" and soc in UCLIBC_SOCS:
        return (f"this {soc} board runs {libc or 'a C library other than uClibc'}, and Rockchip builds the "
                f"{soc} mini runtime (librknnmrt.so, bundle architecture armhf-uclibc) for uClibc only; the armhf "
                "librknnrt.so is a glibc build for the RK3588/RK356x NPUs and would not drive this one. Use the "
                "board vendor's uClibc (Buildroot) image, or a mini runtime its vendor built for this libc")
    if key == "armhf-uclibc" and soc not in UCLIBC_SOCS:
        return (f"this board runs uClibc, and Rockchip's armhf-uclibc files are the RV1103/RV1106 mini runtime "
                f"(librknnmrt.so), not for {'SoC ' + soc if soc else 'a board whose SoC is unknown'}; the armhf "
                "(glibc) files need glibc's loader, which this board lacks")
    return ""


def elf_libc(data: bytes) -> str:
    """The C library an ELF program or library was built for, from the names it needs: "uclibc" (libc.so.0 /
    ld-uClibc), "glibc" (libc.so.6), "" when neither (a script, a static file)."""
    if not data.startswith(b"\x7fELF"):
        return ""
    if b"ld-uClibc.so" in data or b"\0libc.so.0\0" in data:
        return "uclibc"
    if b"\0libc.so.6\0" in data:
        return "glibc"
    return ""


def _soc_label(socs: list[str]) -> str:
    return "/".join(socs) if socs else "any SoC"


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

    def for_arch(self, arch: str, soc: str = "", libc: str = "") -> list[BundleFile]:
        """The files a board of `arch` (SoC `soc`, C library `libc`) gets: per destination, the build for its SoC
        family when the bundle has one, else the one for any SoC; builds for other SoCs never; never a file of
        the other C library (armhf-uclibc and armhf are separate architectures)."""
        key = board_arch(arch, soc, libc)
        chosen: dict[str, BundleFile] = {}
        for f in self.files:
            if not (f.arch == key or (f.arch == "any" and key in GLIBC_ARCHES)):
                continue
            if f.socs and soc not in f.socs:
                continue
            have = chosen.get(f.dest)
            if have is None or (f.socs and not have.socs):
                chosen[f.dest] = f
        return list(chosen.values())

    def missing_runtime(self, arch: str, soc: str = "", libc: str = "") -> str:
        """Why a board of `arch`/`soc`/`libc` cannot be provisioned from this bundle ("" when it can): what is
        missing and how to add it."""
        key = board_arch(arch, soc, libc)
        if any(f.role == "runtime" for f in self.for_arch(arch, soc, libc)):
            return ""
        name = lib_name(key)
        fix = (f"import an SDK tree of {self.version} that has it, or add Rockchip's {name} of {self.version} "
               f"from elsewhere: inv bundle.import SDK_PATH --runtime {key}=PATH/{name}")
        others = sorted({_soc_label(f.socs) for f in self.files if f.role == "runtime" and f.arch == key})
        if others:
            board = f"SoC {soc}" if soc else "a board whose SoC is unknown (no rockchip,… entry in its device tree)"
            return (f"bundle {self.version} has {name} for {key} only for {', '.join(others)}, not for {board}: "
                    f"{fix}")
        have = ", ".join(f"{a} ({', '.join(p for p in parts if p != 'missing' and parts[p])})"
                         for a, parts in self.parts().items() if any(parts[p] for p in parts if p != "missing"))
        return (f"bundle {self.version} has no {name} for {key} (it has: {have or 'nothing'}): {fix}")

    def parts(self) -> dict[str, dict]:
        """Per architecture: the SoC builds of runtime and server, whether scripts and headers are there,
        the lite2 Python tags, and what a complete bundle would have but this one lacks."""
        out: dict[str, dict] = {}
        for arch in ARCHES:
            files = [f for f in self.files if f.arch == arch]
            entry = {
                "runtime": sorted({_soc_label(f.socs) for f in files if f.role == "runtime"}),
                "server": sorted({_soc_label(f.socs) for f in files if f.role == "server"}),
                "scripts": all(any(f.role == r for f in files) for r in SCRIPTS),
                "headers": arch in GLIBC_ARCHES and any(f.role == "header" for f in self.files),
                "lite2": sorted(self.wheels) if arch == "aarch64" else [],
            }
            entry["missing"] = [p for p in EXPECTED_PARTS[arch] if not entry[p]]
            out[arch] = entry
        return out

    def save(self) -> None:
        doc = {"version": self.version, "layout": self.layout, "parts": self.parts(),
               "files": [asdict(f) for f in self.files], "wheels": self.wheels}
        (self.root / "bundle.yaml").write_text(
            f"# rkdeploy SDK bundle {self.version}: written by `inv bundle.import`; files/ and wheelhouse/ are not in git.\n"
            "# `parts` is informational (recomputed from `files` and `wheels` when loaded).\n"
            + yaml.safe_dump(doc, sort_keys=False))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_bundle(bundles_dir: Path, version: str) -> Bundle:
    if not _PLAIN_RELEASE.fullmatch(str(version)):
        raise BundleError(f"{version!r} is not a bundle version (a release such as 2.3.2 or 2.0.0b0)")
    root = bundles_dir / version
    manifest = root / "bundle.yaml"
    if not manifest.exists():
        have = ", ".join(list_versions(bundles_dir)) or "none"
        raise BundleError(f"no bundle {version} in {bundles_dir} (bundles: {have}); make one with "
                          "inv bundle.import SDK_PATH")
    try:
        doc = yaml.safe_load(manifest.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError, ValueError, RecursionError) as e:
        # ValueError: an integer of more than 4300 digits; RecursionError: nesting thousands deep
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise BundleError(f"{manifest}: not a readable YAML manifest ({first})") from None
    bundle = _validated(manifest, doc, root)
    if bundle.version != version:
        raise BundleError(f"{manifest}: version: the manifest says {bundle.version!r} but lives in bundles/{version}/")
    return bundle


def _validated(manifest: Path, doc, root: Path) -> Bundle:
    """A Bundle from a manifest's parsed YAML, every value checked: BundleError naming the field otherwise."""
    def bad(where: str, problem: str) -> BundleError:
        return BundleError(f"{manifest}: {where}: {problem}")

    if not isinstance(doc, dict):
        raise bad("top level", "expected a mapping with version, layout, files and wheels")
    version = doc.get("version")
    if version is None:
        raise bad("version", "missing")
    if not isinstance(version, str) or not _PLAIN_RELEASE.fullmatch(version):
        raise bad("version", f"{version!r} is not a plain release string (such as '2.3.2' or '2.0.0b0'; quote it)")
    layout = doc.get("layout")
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise bad("layout", f"{layout!r} is not one of {', '.join(LAYOUTS)}")
    raw_files = doc.get("files")
    if not isinstance(raw_files, list):
        raise bad("files", "missing or not a list")
    files = [_validated_file(manifest, i, entry, bad) for i, entry in enumerate(raw_files)]
    wheels = doc.get("wheels") or {}
    if not isinstance(wheels, dict):
        raise bad("wheels", "not a mapping of Python tag to wheel file names")
    for tag, names in wheels.items():
        if not isinstance(tag, str) or not _PY_TAG.fullmatch(tag):
            raise bad(f"wheels.{tag}", "not a Python tag such as cp311")
        if not isinstance(names, list) or not all(isinstance(n, str) and _WHEEL_NAME.fullmatch(n) for n in names):
            raise bad(f"wheels.{tag}", "not a list of plain wheel file names")
    return Bundle(version=version, root=root, layout=layout, files=files, wheels=wheels)


def _validated_file(manifest: Path, i: int, entry, bad) -> BundleFile:
    where = f"files[{i}]"
    if not isinstance(entry, dict):
        raise bad(where, "not a mapping")
    known = set(BundleFile.__dataclass_fields__)
    unknown = sorted(set(map(str, entry)) - known)
    if unknown:
        raise bad(f"{where}.{unknown[0]}", "unknown field")
    for name in ("role", "arch", "path", "dest", "sha256", "size"):
        if name not in entry:
            raise bad(f"{where}.{name}", "missing")
    role, arch, path, dest = entry["role"], entry["arch"], entry["path"], entry["dest"]
    sha, size = entry["sha256"], entry["size"]
    mode, vstring, socs = entry.get("mode", "0644"), entry.get("version_string", ""), entry.get("socs", [])
    if role not in ROLES:
        raise bad(f"{where}.role", f"{role!r} is not one of {', '.join(ROLES)}")
    if arch not in (*ARCHES, "any"):
        raise bad(f"{where}.arch", f"{arch!r} is not one of {', '.join(ARCHES)}, any")
    if (not isinstance(path, str) or not path or path.startswith("/") or "\\" in path
            or any(part in ("", ".", "..") for part in path.split("/"))):
        raise bad(f"{where}.path", f"{path!r} is not a plain relative path inside files/")
    if not isinstance(dest, str) or ".." in dest.split("/") or posixpath.normpath(dest) != dest \
            or posixpath.dirname(dest) not in ALLOWED_DEST_DIRS or not posixpath.basename(dest):
        raise bad(f"{where}.dest", f"{dest!r} is not an absolute path in {', '.join(ALLOWED_DEST_DIRS)}")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise bad(f"{where}.sha256", "not 64 lowercase hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise bad(f"{where}.size", f"{size!r} is not a byte count")
    if mode not in MODES:
        raise bad(f"{where}.mode", f"{mode!r} is not one of {', '.join(MODES)} (quote it)")
    if not isinstance(vstring, str) or "\n" in vstring or "\r" in vstring:
        raise bad(f"{where}.version_string", "not a one-line string")
    if not isinstance(socs, list) or not all(isinstance(s, str) and _SOC_NAME.fullmatch(s) for s in socs):
        raise bad(f"{where}.socs", "not a list of SoC names such as rk3588")
    return BundleFile(role=role, arch=arch, path=path, dest=dest, sha256=sha, size=size, mode=mode,
                      version_string=vstring, socs=list(socs))


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


# -- reading an SDK tree ---------------------------------------------------------------------------

@dataclass
class _Found:
    role: str
    arch: str
    socs: tuple[str, ...]
    src: Path
    path: str               # where it goes under files/
    version_string: str = ""


def _lite2_wheels(folder: Path) -> list[Path]:
    found = [w for d in LITE2_DIRS for w in (folder / d).glob("rknn_toolkit_lite2-*.whl")]
    return sorted(found or folder.glob("rknn_toolkit_lite2-*.whl"))


def _wheel_release(wheel: Path) -> str:
    rel = release_of(wheel.name.split("-")[1])
    return str(rel) if rel else "?"


def _detect_layout(tree: Path) -> str:
    if any((tree / d).is_dir() for d in LAYOUTS["1.6+"]):
        return "1.6+"
    if any((tree / "runtime" / d / "Linux").is_dir() for d in SOC_DIRS):
        return "1.4-1.5"
    wheels = _lite2_wheels(tree)
    if wheels:
        rel = _wheel_release(wheels[0])
        raise BundleError(
            f"{tree} holds only lite2 wheels ({rel}), no board runtime or rknn_server: up to 1.5.x the rknn-toolkit2 "
            f"repository carries none; they are in the rknpu2 repository (rockchip-linux/rknpu2, tag v{rel}). "
            f"Run instead: inv bundle.import PATH/TO/rknpu2 --lite2-from {shlex.quote(str(tree))}")
    raise BundleError(f"{tree} is not an RKNN SDK tree: expected rknpu2/runtime/Linux/librknn_api and "
                      "rknpu2/runtime/Linux/rknn_server (SDK 1.6 and later, an rknn-toolkit2 checkout) or "
                      "runtime/RK3588|RK356X|RV1106/Linux/... (SDK 1.4–1.5, an rknpu2 checkout)")


def _scan(tree: Path, layout: str) -> list[_Found]:
    """Every board-side file of the tree, with its architecture and SoCs (static .a libraries skipped)."""
    found: list[_Found] = []

    def server_dir(bindir: Path, arch: str, socs: tuple[str, ...], sub: str) -> None:
        if (bindir / "rknn_server").is_file():
            found.append(_Found("server", arch, socs, bindir / "rknn_server", f"{arch}/{sub}rknn_server"))
            for role, name in SCRIPTS.items():
                if (bindir / name).is_file():
                    found.append(_Found(role, arch, socs, bindir / name, f"{arch}/{sub}{name}"))

    def runtime_dir(libdir: Path, arch: str, socs: tuple[str, ...], sub: str) -> None:
        for name in (lib_name(arch), "librknnrt.so", "librknnmrt.so"):
            if (libdir / name).is_file():
                found.append(_Found("runtime", arch, socs, libdir / name, f"{arch}/{sub}{lib_name(arch)}"))
                return

    def headers(include: Path, socs: tuple[str, ...], sub: str) -> None:
        for header in sorted(include.glob("*.h")):
            found.append(_Found("header", "any", socs, header, f"include/{sub}{header.name}"))

    if layout == "1.6+":
        api, srv = (tree / d for d in LAYOUTS["1.6+"])
        for arch in ARCHES:
            runtime_dir(api / arch, arch, (), "")
            server_dir(srv / arch / "usr/bin", arch, (), "")
        headers(api / "include", (), "")
        return found
    for soc_dir in sorted(d.name for d in (tree / "runtime").iterdir() if (d / "Linux").is_dir()):
        base = tree / "runtime" / soc_dir / "Linux"
        if soc_dir not in SOC_DIRS:
            continue
        socs, sub = SOC_DIRS[soc_dir], f"{soc_dir}/"
        if soc_dir == "RV1106":          # armhf-uclibc: the mini runtime; its server is under arm/
            runtime_dir(base / "librknn_api/armhf", "armhf-uclibc", (), "")
            for d in ("arm", "armhf"):
                server_dir(base / "rknn_server" / d / "usr/bin", "armhf-uclibc", (), "")
            continue
        for arch in GLIBC_ARCHES:
            runtime_dir(base / "librknn_api" / arch, arch, socs, sub)
            server_dir(base / "rknn_server" / arch / "usr/bin", arch, socs, sub)
        headers(base / "librknn_api/include", socs, sub)
    return found


def _read_strings(path: Path) -> str:
    """The printable strings of a binary, one per line (as `strings -n 6` prints them)."""
    data = path.read_bytes()
    return "\n".join(m.decode("ascii", "replace") for m in re.findall(rb"[\x20-\x7e]{6,}", data))


def _read_version(role: str, path: Path):
    label = "rknn_server" if role == "server" else path.name.removesuffix(".so") if path.name.startswith("librknn") \
        else "librknnrt"
    v = (parse_server if role == "server" else parse_runtime)(_read_strings(path))
    if v is None:
        raise BundleError(f"{path}: no {label} version string: not Rockchip's {label}?")
    return v


def _check_libc(arch: str, path: Path, what: str) -> None:
    """A glibc build may not become an armhf-uclibc file, nor a uClibc build an aarch64/armhf one: the board's
    loader would refuse it ("not found" for a program whose interpreter is missing)."""
    with open(path, "rb") as f:
        built_for = elf_libc(f.read())
    want = "uclibc" if arch == "armhf-uclibc" else "glibc"
    if built_for and built_for != want:
        raise BundleError(f"{what}: a {built_for} build (it needs {'libc.so.0 / ld-uClibc' if built_for == 'uclibc' else 'libc.so.6'}), "
                          f"but {arch} files must be {want} builds: "
                          + ("use Rockchip's armhf-uclibc file for RV1103/RV1106 boards" if want == "uclibc"
                             else "a uClibc build belongs to armhf-uclibc (RV1103/RV1106 boards)"))


def parse_runtime_options(values) -> dict[str, Path]:
    """`--runtime aarch64=PATH` (repeatable or comma-separated) → {arch: path}."""
    out: dict[str, Path] = {}
    for value in values or ():
        for item in str(value).split(","):
            if not item.strip():
                continue
            arch, sep, path = item.strip().partition("=")
            if not sep or arch not in ARCHES or not path:
                raise BundleError(f"--runtime {item.strip()}: expected ARCH=PATH with ARCH one of {', '.join(ARCHES)}")
            out[arch] = Path(path).expanduser()
    return out


def import_sdk(tree: Path, bundles_dir: Path, python_tags: list[str], log=print, lite2_from: Path | None = None,
               runtimes: dict[str, Path] | None = None, pip_options: list[str] | tuple[str, ...] = ()) -> Bundle:
    """bundles/<release>/ from an SDK tree, plus lite2 wheels from `lite2_from` (the 1.5.x rknn-toolkit2
    checkout next to an rknpu2 one) and runtimes given per architecture (`runtimes`, e.g. Rockchip's aarch64
    librknnrt.so that a tree lacks). Every version string must name one release."""
    tree = tree.expanduser().resolve()
    if not tree.is_dir():
        raise BundleError(f"{tree}: no such directory")
    layout = _detect_layout(tree)
    found = _scan(tree, layout)
    if not any(f.role in ("runtime", "server") for f in found):
        raise BundleError(f"{tree}: the SDK tree holds no librknnrt.so, librknnmrt.so or rknn_server for "
                          f"{', '.join(ARCHES)}")
    versions: list[tuple[str, str, str]] = []        # what, release, where
    for f in found:
        if f.role in ("runtime", "server"):
            v = _read_version(f.role, f.src)
            f.version_string = v.raw
            versions.append((f.src.name, v.release, str(f.src.relative_to(tree))))
    release = versions[0][1]
    mixed = [v for v in versions if not same_release(v[1], release)]
    if mixed:
        listing = "; ".join(f"{what.removesuffix('.so')} {rel} ({src})" for what, rel, src in versions)
        raise BundleError(f"{tree}: mixed versions inside one SDK tree: {listing}")
    for arch, path in (runtimes or {}).items():
        if not path.is_file():
            raise BundleError(f"--runtime {arch}={path}: no such file")
        v = _read_version("runtime", path)
        if not same_release(v.release, release):
            raise BundleError(f"--runtime {arch}={path}: its version string is {v.raw!r} ({v.release}), "
                              f"the SDK tree is {release}: use the {lib_name(arch)} of {release}")
        replaced = [f for f in found if f.role == "runtime" and f.arch == arch]
        for f in replaced:
            log(f"bundle {release}: {arch}: --runtime {path} replaces the tree's {f.src.relative_to(tree)}")
        found = [f for f in found if f not in replaced]
        found.append(_Found("runtime", arch, (), path.resolve(), f"{arch}/{lib_name(arch)}", v.raw))
    for f in found:
        if f.role in ("runtime", "server"):
            _check_libc(f.arch, f.src, f"{f.src}" if f.src.is_relative_to(tree) else f"--runtime {f.arch}={f.src}")
    sdk_wheels = [w for w in _lite2_wheels(tree) if same_release(_wheel_release(w), release)]
    if lite2_from is not None:
        lite2_from = lite2_from.expanduser().resolve()
        others = _lite2_wheels(lite2_from) if lite2_from.is_dir() else []
        if not others:
            raise BundleError(f"--lite2-from {lite2_from}: no rknn_toolkit_lite2-*.whl there (nor under "
                              f"{' or '.join(LITE2_DIRS)})")
        differ = sorted({_wheel_release(w) for w in others if not same_release(_wheel_release(w), release)})
        if differ:
            raise BundleError(f"--lite2-from {lite2_from}: its lite2 wheels are {', '.join(differ)}, the SDK tree "
                              f"{tree} is {release}: check out both repositories at the same release")
        sdk_wheels = others
    root = bundles_dir / release
    staging = bundles_dir / f".{release}.importing"
    shutil.rmtree(staging, ignore_errors=True)
    bundle = Bundle(version=release, root=staging, layout=layout)
    for f in found:
        dest = bundle.files_dir / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.src, dest)
        target = f"/usr/include/{f.src.name}" if f.role == "header" else \
            (UCLIBC_DESTINATIONS if f.arch == "armhf-uclibc" else DESTINATIONS)[f.role]
        bundle.files.append(BundleFile(role=f.role, arch=f.arch, path=f.path, dest=target, sha256=sha256_of(dest),
                                       size=dest.stat().st_size,
                                       mode="0644" if f.role in ("runtime", "header") else "0755",
                                       version_string=f.version_string, socs=list(f.socs)))
    for tag in python_tags:
        _build_wheelhouse(bundle, release, tag, sdk_wheels, log, pip_options)
    for line in describe_parts(bundle):
        log(f"bundle {release}: {line}")
    bundle.save()
    shutil.rmtree(root, ignore_errors=True)      # a re-import replaces the bundle as a whole
    staging.rename(root)
    bundle.root = root
    return bundle


def describe_parts(bundle: Bundle) -> list[str]:
    """One line per architecture: what the bundle has, and what is missing with how to add it."""
    lines = []
    for arch, parts in bundle.parts().items():
        have = []
        for name in ("runtime", "server"):
            if parts[name]:
                have.append(f"{name} ({', '.join(parts[name])})")
        have += [name for name in ("scripts", "headers") if parts[name]]
        if parts["lite2"]:
            have.append(f"lite2 {','.join(parts['lite2'])}")
        line = f"{arch}: {', '.join(have) or 'nothing'}"
        if parts["missing"]:
            line += f"; missing: {', '.join(parts['missing'])}"
            if "runtime" in parts["missing"]:
                line += (f" (add Rockchip's {lib_name(arch)} {bundle.version} with "
                         f"--runtime {arch}=PATH/{lib_name(arch)}; provision refuses {arch} boards until then)")
        lines.append(line)
    return lines


def _requires(wheel: Path) -> list[str]:
    """The unconditional Requires-Dist of a wheel (its METADATA)."""
    with zipfile.ZipFile(wheel) as z:
        name = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        text = z.read(name).decode("utf-8", "replace") if name else ""
    out = []
    for line in text.splitlines():
        if not line.strip():
            break                              # the headers end at the first empty line
        if line.startswith("Requires-Dist:"):
            req = line.split(":", 1)[1].strip()
            if "extra ==" not in req:
                out.append(req)
    return out


def _build_wheelhouse(bundle: Bundle, release: str, tag: str, sdk_wheels: list[Path], log,
                      pip_options=()) -> None:
    """lite2 for one Python tag, with its aarch64 dependencies and a current pip, for offline installs.

    SDK wheels tagged plain `linux_aarch64` (1.5.x to 2.2.0) are not what `pip download --platform
    manylinux2014_aarch64` accepts: the SDK wheel is copied in as it is and its Requires-Dist resolved for
    the board's Python and aarch64 instead (docs/sdk-releases.md)."""
    house = bundle.wheelhouse / tag
    house.mkdir(parents=True, exist_ok=True)
    pyver = f"{tag[2]}.{tag[3:]}"
    local = [w for w in sdk_wheels if WHEEL_TAG.search(w.name) and WHEEL_TAG.search(w.name).group(1) == tag]
    for w in local[:1]:
        shutil.copy2(w, house / w.name)
    spec = ["pip"] + (_requires(local[0]) if local else [f"rknn-toolkit-lite2=={release}"])
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--platform", "manylinux2014_aarch64", "--platform", "linux_aarch64",
               "--python-version", pyver, "--implementation", "cp", *pip_options, "-d", str(house), *spec]
    log(f"bundle {release}: wheelhouse for {tag} ({'SDK wheel ' + local[0].name if local else 'package index'}) …")
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(house, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        log(f"bundle {release}: no lite2 for {tag}: {last}")
        return
    names = sorted(p.name for p in house.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip")))
    if not any(n.startswith("rknn_toolkit_lite2-") for n in names):
        shutil.rmtree(house, ignore_errors=True)
        log(f"bundle {release}: no lite2 for {tag}")
        return
    bundle.wheels[tag] = names
