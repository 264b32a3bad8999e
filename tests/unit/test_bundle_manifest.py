"""Bundle manifests as data: a bundle.yaml text and the Bundle it loads as, or the exact error a user reads
(naming the manifest and the entry); what a bundle gives a board of each architecture, SoC and C library,
and why it refuses one. No SDK tree, no import: these run in milliseconds (scripts/mutation.sh runs them per
mutant)."""
import hashlib
from pathlib import Path

import pytest

from rkdeploy.bundle import (Bundle, BundleError, BundleFile, board_arch, describe_parts, elf_libc, lib_name,
                             libc_mismatch, list_versions, load_bundle, parse_runtime_options, sha256_of, verify)

SHA = "0123456789abcdef" * 4
NOT_ALLOWED = "is not an absolute path in /usr/lib, /usr/bin, /usr/include, /oem/usr/lib, /oem/usr/bin, " \
    "/etc/systemd/system"
NOT_PLAIN = "is not a plain relative path inside files/"

# One entry per line of the `files` list below; a case replaces ("key: value") or drops ("-key") one line.
ENTRY = {"role": "runtime", "arch": "aarch64", "path": "aarch64/librknnrt.so", "dest": "/usr/lib/librknnrt.so",
         "sha256": SHA, "size": "12"}


def manifest_text(version="'2.3.2'", layout="1.6+", files=None, wheels="{}"):
    """A bundle.yaml as `inv bundle.import` writes it (minus `parts`, which the loader ignores)."""
    if files is None:
        files = "\n" + entry_text()
    return f"version: {version}\nlayout: {layout}\nfiles: {files}\nwheels: {wheels}\n"


def entry_text(*changes):
    lines = dict(ENTRY)
    for change in changes:
        if change.startswith("-"):
            lines.pop(change[1:])
        else:
            key, _, value = change.partition(": ")
            lines[key] = value
    return "\n".join(("- " if n == 0 else "  ") + f"{k}: {v}" for n, (k, v) in enumerate(lines.items()))


def write(bundles, text, version="2.3.2"):
    manifest = bundles / version / "bundle.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(text)
    return manifest


def refusal(bundles, version="2.3.2") -> str:
    with pytest.raises(BundleError) as e:
        load_bundle(bundles, version)
    return str(e.value)


def runtime_file(**changes) -> BundleFile:
    values = dict(ENTRY, size=12)
    values.update(changes)
    return BundleFile(**values)


# -- loading: what a valid manifest becomes ---------------------------------------------------------

def test_a_minimal_manifest_loads_with_the_default_mode_version_string_and_socs(tmp_path):
    write(tmp_path, manifest_text())
    assert load_bundle(tmp_path, "2.3.2") == Bundle(version="2.3.2", root=tmp_path / "2.3.2", layout="1.6+",
                                                    files=[runtime_file()], wheels={})


def test_every_field_of_a_file_entry_is_read_and_wheels_are_kept_per_python_tag(tmp_path):
    files = "\n" + entry_text("mode: '0755'", "version_string: 'librknnrt version: 1.5.2 (c6b7b351a@2023-08-23)'",
                              "socs: [rk3588, rk3588s]", "size: 0", "arch: armhf", "role: server",
                              "dest: /usr/bin/rknn_server", "path: armhf/RK3588/rknn_server")
    files += "\n" + entry_text("role: header", "arch: any", "path: include/rknn_api.h",
                               "dest: /usr/include/rknn_api.h")
    wheels = "{cp311: [rknn_toolkit_lite2-1.5.2-cp311-cp311-linux_aarch64.whl, numpy-1.26.4.tar.gz], cp38: []}"
    write(tmp_path, manifest_text(version="'1.5.2'", layout="1.4-1.5", files=files, wheels=wheels), "1.5.2")
    assert load_bundle(tmp_path, "1.5.2") == Bundle(
        version="1.5.2", root=tmp_path / "1.5.2", layout="1.4-1.5",
        files=[BundleFile(role="server", arch="armhf", path="armhf/RK3588/rknn_server", dest="/usr/bin/rknn_server",
                          sha256=SHA, size=0, mode="0755",
                          version_string="librknnrt version: 1.5.2 (c6b7b351a@2023-08-23)", socs=["rk3588", "rk3588s"]),
               BundleFile(role="header", arch="any", path="include/rknn_api.h", dest="/usr/include/rknn_api.h",
                          sha256=SHA, size=12)],
        wheels={"cp311": ["rknn_toolkit_lite2-1.5.2-cp311-cp311-linux_aarch64.whl", "numpy-1.26.4.tar.gz"],
                "cp38": []})


@pytest.mark.parametrize("wheels", ["null", "{}"])
def test_a_manifest_without_wheels_has_none(tmp_path, wheels):
    write(tmp_path, manifest_text(wheels=wheels))
    assert load_bundle(tmp_path, "2.3.2").wheels == {}


def test_a_manifest_with_no_files_is_a_valid_empty_bundle(tmp_path):
    write(tmp_path, manifest_text(files="[]"))
    assert load_bundle(tmp_path, "2.3.2").files == []


@pytest.mark.parametrize("change", [
    "socs: [r1, abcdefghijklmnop]",              # 2 and 16 characters: the shortest and longest SoC names
    "dest: /etc/systemd/system/rknn.service",
    "dest: /oem/usr/lib/librknnmrt.so",
    "path: a.b/c-d_e.so",
])
def test_values_at_the_edge_of_what_is_allowed_load(tmp_path, change):
    write(tmp_path, manifest_text(files="\n" + entry_text(change)))
    loaded = load_bundle(tmp_path, "2.3.2").files[0]
    key, _, value = change.partition(": ")
    assert getattr(loaded, key) == (value.strip("[]").split(", ") if key == "socs" else value)


# -- loading: what is refused, and the exact words ----------------------------------------------------

@pytest.mark.parametrize("text,where_problem", [
    ("", "top level: expected a mapping with version, layout, files and wheels"),
    ("- a\n- list\n", "top level: expected a mapping with version, layout, files and wheels"),
    ("layout: 1.6+\nfiles: []\n", "version: missing"),
    (manifest_text(version="2.3"), "version: 2.3 is not a plain release string (such as '2.3.2' or '2.0.0b0'; "
                                   "quote it)"),
    (manifest_text(version="'2.3.2; rm -rf /'"), "version: '2.3.2; rm -rf /' is not a plain release string "
                                                 "(such as '2.3.2' or '2.0.0b0'; quote it)"),
    (manifest_text(layout="'1.7'"), "layout: '1.7' is not one of 1.6+, 1.4-1.5"),
    (manifest_text(layout="null"), "layout: None is not one of 1.6+, 1.4-1.5"),
    (manifest_text(layout="{a: 1}"), "layout: {'a': 1} is not one of 1.6+, 1.4-1.5"),
    ("version: '2.3.2'\nlayout: 1.6+\n", "files: missing or not a list"),
    (manifest_text(files="x"), "files: missing or not a list"),
    (manifest_text(files="[x]"), "files[0]: not a mapping"),
    (manifest_text(wheels="[a.whl]"), "wheels: not a mapping of Python tag to wheel file names"),
    (manifest_text(wheels="{cp3: []}"), "wheels.cp3: not a Python tag such as cp311"),
    (manifest_text(wheels="{311: []}"), "wheels.311: not a Python tag such as cp311"),
    (manifest_text(wheels="{cp311: x.whl}"), "wheels.cp311: not a list of plain wheel file names"),
    (manifest_text(wheels="{cp311: [1]}"), "wheels.cp311: not a list of plain wheel file names"),
    (manifest_text(wheels="{cp311: [a.whl, ../x.whl]}"), "wheels.cp311: not a list of plain wheel file names"),
])
def test_a_malformed_manifest_is_refused_naming_the_manifest_and_the_field(tmp_path, text, where_problem):
    manifest = write(tmp_path, text)
    assert refusal(tmp_path) == f"{manifest}: {where_problem}"


@pytest.mark.parametrize("change,where_problem", [
    ("evil: 1", "files[0].evil: unknown field"),
    ("zeta: 1\n  alpha: 2", "files[0].alpha: unknown field"),        # the first in alphabetical order
    ("1: x", "files[0].1: unknown field"),
    ("-role", "files[0].role: missing"),
    ("-arch", "files[0].arch: missing"),
    ("-path", "files[0].path: missing"),
    ("-dest", "files[0].dest: missing"),
    ("-sha256", "files[0].sha256: missing"),
    ("-size", "files[0].size: missing"),
    ("role: anything", "files[0].role: 'anything' is not one of runtime, server, start_script, restart_script, header"),
    ("arch: arm64", "files[0].arch: 'arm64' is not one of aarch64, armhf, armhf-uclibc, any"),
    ("path: ../../../etc/passwd", f"files[0].path: '../../../etc/passwd' {NOT_PLAIN}"),
    ("path: /usr/lib/librknnrt.so", f"files[0].path: '/usr/lib/librknnrt.so' {NOT_PLAIN}"),
    ("path: aarch64\\librknnrt.so", f"files[0].path: 'aarch64\\\\librknnrt.so' {NOT_PLAIN}"),
    ("path: aarch64//librknnrt.so", f"files[0].path: 'aarch64//librknnrt.so' {NOT_PLAIN}"),
    ("path: ./librknnrt.so", f"files[0].path: './librknnrt.so' {NOT_PLAIN}"),
    ("path: aarch64/", f"files[0].path: 'aarch64/' {NOT_PLAIN}"),
    ("path: ''", f"files[0].path: '' {NOT_PLAIN}"),
    ("path: 7", f"files[0].path: 7 {NOT_PLAIN}"),
    ("dest: /etc/passwd", f"files[0].dest: '/etc/passwd' {NOT_ALLOWED}"),
    ("dest: /usr/lib/../../etc/shadow", f"files[0].dest: '/usr/lib/../../etc/shadow' {NOT_ALLOWED}"),
    ("dest: /usr/lib/./librknnrt.so", f"files[0].dest: '/usr/lib/./librknnrt.so' {NOT_ALLOWED}"),
    ("dest: /usr//lib/librknnrt.so", f"files[0].dest: '/usr//lib/librknnrt.so' {NOT_ALLOWED}"),
    ("dest: /usr/lib/rknn/librknnrt.so", f"files[0].dest: '/usr/lib/rknn/librknnrt.so' {NOT_ALLOWED}"),
    ("dest: usr/lib/librknnrt.so", f"files[0].dest: 'usr/lib/librknnrt.so' {NOT_ALLOWED}"),
    ("dest: /usr/lib", f"files[0].dest: '/usr/lib' {NOT_ALLOWED}"),
    ("dest: [/usr/lib/x]", f"files[0].dest: ['/usr/lib/x'] {NOT_ALLOWED}"),
    ("sha256: abc", "files[0].sha256: not 64 lowercase hex digits"),
    (f"sha256: {SHA.upper()}", "files[0].sha256: not 64 lowercase hex digits"),
    (f"sha256: {SHA}0", "files[0].sha256: not 64 lowercase hex digits"),
    ("sha256: 12", "files[0].sha256: not 64 lowercase hex digits"),
    ("size: '12'", "files[0].size: '12' is not a byte count"),
    ("size: -1", "files[0].size: -1 is not a byte count"),
    ("size: true", "files[0].size: True is not a byte count"),
    ("size: 1.0", "files[0].size: 1.0 is not a byte count"),
    ("mode: '4755'", "files[0].mode: '4755' is not one of 0644, 0755 (quote it)"),
    # unquoted, YAML 1.1 reads 0644 as an octal number: the user sees 420 and the hint to quote it
    ("mode: 0644", "files[0].mode: 420 is not one of 0644, 0755 (quote it)"),
    ("version_string: \"a\\nb\"", "files[0].version_string: not a one-line string"),
    ("version_string: \"a\\rb\"", "files[0].version_string: not a one-line string"),
    ("version_string: 2", "files[0].version_string: not a one-line string"),
    ("socs: rk3588", "files[0].socs: not a list of SoC names such as rk3588"),
    ("socs: [rk3588, 3588]", "files[0].socs: not a list of SoC names such as rk3588"),
    ("socs: [RK3588]", "files[0].socs: not a list of SoC names such as rk3588"),
    ("socs: [r]", "files[0].socs: not a list of SoC names such as rk3588"),
    ("socs: [abcdefghijklmnopq]", "files[0].socs: not a list of SoC names such as rk3588"),
])
def test_a_bad_file_entry_is_refused_naming_the_manifest_the_entry_and_the_field(tmp_path, change, where_problem):
    manifest = write(tmp_path, manifest_text(files="\n" + entry_text(change)))
    assert refusal(tmp_path) == f"{manifest}: {where_problem}"


def test_the_refusal_names_the_index_of_the_bad_entry(tmp_path):
    files = "\n" + entry_text() + "\n" + entry_text() + "\n" + entry_text("mode: '0777'")
    manifest = write(tmp_path, manifest_text(files=files))
    assert refusal(tmp_path) == f"{manifest}: files[2].mode: '0777' is not one of 0644, 0755 (quote it)"


@pytest.mark.parametrize("version", ["../etc", "2", "2.3.2; rm -rf /", "2.3.2.1.0", "v2.3.2", "2.3.2-1"])
def test_a_version_that_is_not_a_release_is_refused_before_any_path_is_built(tmp_path, version):
    assert refusal(tmp_path, version) == f"{version!r} is not a bundle version (a release such as 2.3.2 or 2.0.0b0)"


def test_a_missing_bundle_names_the_folder_and_the_bundles_there(tmp_path):
    assert refusal(tmp_path) == (f"no bundle 2.3.2 in {tmp_path} (bundles: none); make one with "
                                 "inv bundle.import SDK_PATH")
    write(tmp_path, manifest_text(version="'2.3.1'"), "2.3.1")
    write(tmp_path, manifest_text(version="'1.5.2'"), "1.5.2")
    assert refusal(tmp_path) == (f"no bundle 2.3.2 in {tmp_path} (bundles: 1.5.2, 2.3.1); make one with "
                                 "inv bundle.import SDK_PATH")


def test_a_manifest_in_the_folder_of_another_version_is_refused(tmp_path):
    manifest = write(tmp_path, manifest_text(version="'2.3.1'"))
    assert refusal(tmp_path) == f"{manifest}: version: the manifest says '2.3.1' but lives in bundles/2.3.2/"


def test_an_unreadable_manifest_gives_the_first_line_of_the_reason(tmp_path):
    manifest = write(tmp_path, "version: [unclosed\n")
    assert refusal(tmp_path) == f"{manifest}: not a readable YAML manifest (while parsing a flow sequence)"
    manifest.write_bytes(b"version: '2.3.2'\n\xff\n")
    assert refusal(tmp_path) == (f"{manifest}: not a readable YAML manifest ('utf-8' codec can't decode byte 0xff "
                                 "in position 17: invalid start byte)")
    manifest.write_text("size: " + "9" * 5000 + "\n")
    assert refusal(tmp_path).startswith(f"{manifest}: not a readable YAML manifest (Exceeds the limit (4300 digits)")


def test_a_long_reason_is_cut_at_200_characters(tmp_path):
    # a manifest's own text can make the reason long (an unknown tag is quoted in it)
    manifest = write(tmp_path, "!" + "t" * 300 + " x\n")
    reason = "could not determine a constructor for the tag '!" + "t" * 300
    assert refusal(tmp_path) == f"{manifest}: not a readable YAML manifest ({reason[:200]})"


def test_a_folder_named_bundle_yaml_is_an_unreadable_manifest(tmp_path):
    (tmp_path / "2.3.2/bundle.yaml").mkdir(parents=True)
    manifest = tmp_path / "2.3.2/bundle.yaml"
    assert refusal(tmp_path) == f"{manifest}: not a readable YAML manifest ([Errno 21] Is a directory: '{manifest}')"


def test_list_versions_names_the_folders_with_a_manifest_in_order(tmp_path):
    assert list_versions(tmp_path) == []
    for version in ("2.3.2", "1.5.2", "2.0.0b0"):
        write(tmp_path, manifest_text(version=repr(version)), version)
    (tmp_path / ".2.3.3.importing/files").mkdir(parents=True)      # an import under way has no manifest yet
    (tmp_path / "notes.txt").write_text("x")
    assert list_versions(tmp_path) == ["1.5.2", "2.0.0b0", "2.3.2"]


# -- saving: the text that goes into git ----------------------------------------------------------------

def test_save_writes_the_manifest_with_its_header_and_parts_and_it_loads_back_equal(tmp_path):
    bundle = Bundle(version="2.3.2", root=tmp_path / "2.3.2", layout="1.6+",
                    files=[runtime_file(version_string="librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)")],
                    wheels={"cp311": ["rknn_toolkit_lite2-2.3.2-cp311-cp311-manylinux_2_17_aarch64.whl"]})
    bundle.root.mkdir()
    bundle.save()
    assert (bundle.root / "bundle.yaml").read_text() == f"""\
# rkdeploy SDK bundle 2.3.2: written by `inv bundle.import`; files/ and wheelhouse/ are not in git.
# `parts` is informational (recomputed from `files` and `wheels` when loaded).
version: 2.3.2
layout: 1.6+
parts:
  aarch64:
    runtime:
    - any SoC
    server: []
    scripts: false
    headers: false
    lite2:
    - cp311
    missing:
    - server
    - scripts
    - headers
  armhf:
    runtime: []
    server: []
    scripts: false
    headers: false
    lite2: []
    missing:
    - runtime
    - server
    - scripts
    - headers
  armhf-uclibc:
    runtime: []
    server: []
    scripts: false
    headers: false
    lite2: []
    missing:
    - runtime
    - server
    - scripts
files:
- role: runtime
  arch: aarch64
  path: aarch64/librknnrt.so
  dest: /usr/lib/librknnrt.so
  sha256: {SHA}
  size: 12
  mode: '0644'
  version_string: 'librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)'
  socs: []
wheels:
  cp311:
  - rknn_toolkit_lite2-2.3.2-cp311-cp311-manylinux_2_17_aarch64.whl
"""
    assert load_bundle(tmp_path, "2.3.2") == bundle


def test_a_bundle_keeps_its_files_and_wheelhouse_under_its_root(tmp_path):
    bundle = Bundle(version="2.3.2", root=tmp_path / "2.3.2", layout="1.6+")
    assert (bundle.files_dir, bundle.wheelhouse) == (tmp_path / "2.3.2/files", tmp_path / "2.3.2/wheelhouse")


# -- verify and sha256 ----------------------------------------------------------------------------------

def test_sha256_of_a_file_is_its_hex_digest_also_beyond_one_read(tmp_path):
    small, empty, large = tmp_path / "abc", tmp_path / "empty", tmp_path / "large"
    small.write_bytes(b"abc")
    empty.write_bytes(b"")
    data = bytes(range(256)) * (3 * 4096 + 7)            # 3 MiB and a bit: several 1 MiB reads
    large.write_bytes(data)
    assert sha256_of(small) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_of(empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_of(large) == hashlib.sha256(data).hexdigest()


def test_verify_names_each_missing_resized_or_changed_file_and_wheel_and_nothing_when_intact(tmp_path):
    content = b"librknnrt\0"
    digest = hashlib.sha256(content).hexdigest()
    files = [runtime_file(path=p, sha256=digest, size=len(content))
             for p in ("intact.so", "missing.so", "grown.so", "changed.so")]
    bundle = Bundle(version="2.3.2", root=tmp_path, layout="1.6+", files=files,
                    wheels={"cp311": ["present.whl", "absent.whl"]})
    bundle.files_dir.mkdir()
    (bundle.files_dir / "intact.so").write_bytes(content)
    (bundle.files_dir / "grown.so").write_bytes(content + b"!")
    (bundle.files_dir / "changed.so").write_bytes(content.upper())
    (bundle.wheelhouse / "cp311").mkdir(parents=True)
    (bundle.wheelhouse / "cp311/present.whl").write_bytes(b"any content: wheels are not pinned")
    assert verify(bundle) == [
        f"{tmp_path}/files/missing.so: missing",
        f"{tmp_path}/files/grown.so: truncated or grown (11 bytes, manifest says 10)",
        f"{tmp_path}/files/changed.so: content changed (sha256 differs from the manifest)",
        f"{tmp_path}/wheelhouse/cp311/absent.whl: missing",
    ]
    bundle.files, bundle.wheels = files[:1], {"cp311": ["present.whl"]}
    assert verify(bundle) == []


# -- which files a board gets, and why none ---------------------------------------------------------------

def bf(role, arch, path, dest, socs=()):
    return BundleFile(role=role, arch=arch, path=path, dest=dest, sha256=SHA, size=1, socs=list(socs))


RT_ANY = bf("runtime", "aarch64", "aarch64/librknnrt.so", "/usr/lib/librknnrt.so")
RT_3588 = bf("runtime", "aarch64", "aarch64/RK3588/librknnrt.so", "/usr/lib/librknnrt.so", ("rk3588", "rk3588s"))
RT_356X = bf("runtime", "aarch64", "aarch64/RK356X/librknnrt.so", "/usr/lib/librknnrt.so", ("rk3566", "rk3568"))
SRV_ANY = bf("server", "aarch64", "aarch64/rknn_server", "/usr/bin/rknn_server")
HEADER = bf("header", "any", "include/rknn_api.h", "/usr/include/rknn_api.h")
RT_ARMHF = bf("runtime", "armhf", "armhf/librknnrt.so", "/usr/lib/librknnrt.so")
RT_ARMHF_3588 = bf("runtime", "armhf", "armhf/RK3588/librknnrt.so", "/usr/lib/librknnrt.so", ("rk3588", "rk3588s"))
RT_MRT = bf("runtime", "armhf-uclibc", "armhf-uclibc/librknnmrt.so", "/oem/usr/lib/librknnmrt.so")
START_MRT = bf("start_script", "armhf-uclibc", "armhf-uclibc/start_rknn.sh", "/oem/usr/bin/start_rknn.sh")


@pytest.mark.parametrize("files,board,paths", [
    # the SoC family's build wins over the any-SoC one, whichever the manifest lists first
    ([RT_ANY, RT_3588, HEADER], ("aarch64", "rk3588s"), ["aarch64/RK3588/librknnrt.so", "include/rknn_api.h"]),
    ([RT_3588, RT_ANY, HEADER], ("aarch64", "rk3588"), ["aarch64/RK3588/librknnrt.so", "include/rknn_api.h"]),
    ([RT_ANY, RT_3588, HEADER], ("aarch64", "rk3566"), ["aarch64/librknnrt.so", "include/rknn_api.h"]),
    ([RT_3588, RT_ANY, HEADER], ("aarch64", ""), ["aarch64/librknnrt.so", "include/rknn_api.h"]),
    # a build for other SoCs never, even when it is all there is
    ([RT_3588, SRV_ANY], ("aarch64", "rk3576"), ["aarch64/rknn_server"]),
    # of two builds for any SoC, the first listed
    ([RT_ANY, bf("runtime", "aarch64", "other.so", "/usr/lib/librknnrt.so")], ("aarch64", "rk3588"),
     ["aarch64/librknnrt.so"]),
    # headers (arch "any") go to glibc boards only; armhf and armhf-uclibc files never mix
    ([RT_ANY, RT_ARMHF, RT_MRT, HEADER], ("armhf", "rk3588", "glibc"), ["armhf/librknnrt.so", "include/rknn_api.h"]),
    ([RT_ANY, RT_ARMHF, RT_MRT, HEADER], ("armhf", "rv1106"), ["armhf-uclibc/librknnmrt.so"]),
    ([RT_ANY, RT_ARMHF, RT_MRT, HEADER], ("armhf", "", "uclibc"), ["armhf-uclibc/librknnmrt.so"]),
    ([RT_ANY, RT_ARMHF, RT_MRT, HEADER], ("x86_64", "rk3588"), []),
])
def test_a_board_gets_per_destination_its_socs_build_else_the_any_soc_one_of_its_c_library(files, board, paths):
    bundle = Bundle(version="1.5.2", root=Path("/b"), layout="1.4-1.5", files=files)
    assert [f.path for f in bundle.for_arch(*board)] == paths


FIX_152 = ("import an SDK tree of 1.5.2 that has it, or add Rockchip's librknnrt.so of 1.5.2 from elsewhere: "
           "inv bundle.import SDK_PATH --runtime aarch64=PATH/librknnrt.so")


@pytest.mark.parametrize("files,board,reason", [
    ([RT_ANY], ("aarch64", "rk3588"), ""),
    ([RT_3588], ("aarch64", "rk3588"), ""),
    ([RT_MRT], ("armhf", "rv1103"), ""),
    # only other SoCs' builds: named, not those of another architecture, nor servers
    ([RT_3588, RT_356X, RT_ARMHF_3588, bf("server", "aarch64", "s", "/usr/bin/rknn_server", ["rk3576"])],
     ("aarch64", "rk3576"),
     f"bundle 1.5.2 has librknnrt.so for aarch64 only for rk3566/rk3568, rk3588/rk3588s, not for SoC rk3576: {FIX_152}"),
    ([RT_356X, RT_3588, RT_356X], ("aarch64",),
     "bundle 1.5.2 has librknnrt.so for aarch64 only for rk3566/rk3568, rk3588/rk3588s, not for a board whose SoC "
     f"is unknown (no rockchip,… entry in its device tree): {FIX_152}"),
    ([], ("aarch64", "rk3588"), f"bundle 1.5.2 has no librknnrt.so for aarch64 (it has: nothing): {FIX_152}"),
    # the board's C library, not its kernel's architecture alone, picks the files looked for
    ([RT_MRT], ("armhf", "rv1106", "glibc"),
     "bundle 1.5.2 has no librknnrt.so for armhf (it has: armhf-uclibc (runtime)): import an SDK tree of 1.5.2 that "
     "has it, or add Rockchip's librknnrt.so of 1.5.2 from elsewhere: inv bundle.import SDK_PATH --runtime "
     "armhf=PATH/librknnrt.so"),
    ([RT_ARMHF], ("armhf", "rk3588", "uclibc"),
     "bundle 1.5.2 has no librknnmrt.so for armhf-uclibc (it has: armhf (runtime)): import an SDK tree of 1.5.2 "
     "that has it, or add Rockchip's librknnmrt.so of 1.5.2 from elsewhere: inv bundle.import SDK_PATH --runtime "
     "armhf-uclibc=PATH/librknnmrt.so"),
    ([SRV_ANY, HEADER, START_MRT, RT_ARMHF_3588], ("armhf", "rv1106"),
     "bundle 1.5.2 has no librknnmrt.so for armhf-uclibc (it has: aarch64 (server, headers), armhf (runtime, "
     "headers)): import an SDK tree of 1.5.2 that has it, or add Rockchip's librknnmrt.so of 1.5.2 from elsewhere: "
     "inv bundle.import SDK_PATH --runtime armhf-uclibc=PATH/librknnmrt.so"),
])
def test_a_board_without_a_runtime_in_the_bundle_is_told_what_there_is_and_how_to_add_one(files, board, reason):
    bundle = Bundle(version="1.5.2", root=Path("/b"), layout="1.4-1.5", files=files)
    assert bundle.missing_runtime(*board) == reason


def mixed_bundle():
    """aarch64 complete (with a SoC build beside the any-SoC one), armhf a runtime only, armhf-uclibc one script."""
    restart = bf("restart_script", "aarch64", "aarch64/restart_rknn.sh", "/usr/bin/restart_rknn.sh")
    start = bf("start_script", "aarch64", "aarch64/start_rknn.sh", "/usr/bin/start_rknn.sh")
    srv_3588 = bf("server", "aarch64", "aarch64/RK3588/rknn_server", "/usr/bin/rknn_server", ("rk3588", "rk3588s"))
    return Bundle(version="2.3.2", root=Path("/b"), layout="1.6+",
                  files=[RT_3588, RT_ANY, SRV_ANY, srv_3588, start, restart, HEADER, RT_ARMHF, START_MRT],
                  wheels={"cp311": ["a.whl"], "cp310": ["b.whl"]})


def test_parts_say_per_architecture_what_the_bundle_has_and_lacks():
    assert mixed_bundle().parts() == {
        "aarch64": {"runtime": ["any SoC", "rk3588/rk3588s"], "server": ["any SoC", "rk3588/rk3588s"],
                    "scripts": True, "headers": True, "lite2": ["cp310", "cp311"], "missing": []},
        "armhf": {"runtime": ["any SoC"], "server": [], "scripts": False, "headers": True, "lite2": [],
                  "missing": ["server", "scripts"]},
        # one of the two scripts is not "scripts"
        "armhf-uclibc": {"runtime": [], "server": [], "scripts": False, "headers": False, "lite2": [],
                         "missing": ["runtime", "server", "scripts"]},
    }


def test_the_import_describes_each_architectures_parts_and_how_to_add_a_missing_runtime():
    assert describe_parts(mixed_bundle()) == [
        "aarch64: runtime (any SoC, rk3588/rk3588s), server (any SoC, rk3588/rk3588s), scripts, headers, "
        "lite2 cp310,cp311",
        "armhf: runtime (any SoC), headers; missing: server, scripts",
        "armhf-uclibc: nothing; missing: runtime, server, scripts (add Rockchip's librknnmrt.so 2.3.2 with "
        "--runtime armhf-uclibc=PATH/librknnmrt.so; provision refuses armhf-uclibc boards until then)",
    ]


# -- a board's bundle architecture, and a C library no file fits -------------------------------------------

@pytest.mark.parametrize("args,key", [
    (("aarch64", "rv1106", "uclibc"), "aarch64"),
    (("x86_64",), "x86_64"),
    (("armhf",), "armhf"),
    (("armhf-uclibc",), "armhf-uclibc"),
    (("armhf", "rv1103"), "armhf-uclibc"),              # libc unknown: the SoC's Buildroot image decides
    (("armhf", "rk3588"), "armhf"),
    (("armhf", "rk3588", "uclibc"), "armhf-uclibc"),
    (("armhf", "rv1106", "glibc"), "armhf"),
    (("armhf-uclibc", "rv1106", "glibc"), "armhf"),     # the probe's libc overrides the inventory's arch
])
def test_the_bundle_architecture_follows_the_boards_c_library_then_its_soc(args, key):
    assert board_arch(*args) == key


def test_the_mini_runtime_is_librknnmrt_and_every_other_runtime_librknnrt():
    assert [lib_name(a) for a in ("aarch64", "armhf", "armhf-uclibc")] == ["librknnrt.so", "librknnrt.so",
                                                                           "librknnmrt.so"]


@pytest.mark.parametrize("args,reason", [
    (("aarch64", "rv1106", "glibc"), ""),
    (("armhf",), ""),
    (("armhf", "rv1106"), ""),
    (("armhf", "rk3588", "glibc"), ""),
    (("armhf", "rv1103", "uclibc"), ""),
    (("armhf", "rv1106", "glibc"),
     "this rv1106 board runs glibc, and Rockchip builds the rv1106 mini runtime (librknnmrt.so, bundle "
     "architecture armhf-uclibc) for uClibc only; the armhf librknnrt.so is a glibc build for the RK3588/RK356x "
     "NPUs and would not drive this one. Use the board vendor's uClibc (Buildroot) image, or a mini runtime its "
     "vendor built for this libc"),
    (("armhf", "rk3588", "uclibc"),
     "this board runs uClibc, and Rockchip's armhf-uclibc files are the RV1103/RV1106 mini runtime (librknnmrt.so), "
     "not for SoC rk3588; the armhf (glibc) files need glibc's loader, which this board lacks"),
    (("armhf-uclibc",),
     "this board runs uClibc, and Rockchip's armhf-uclibc files are the RV1103/RV1106 mini runtime (librknnmrt.so), "
     "not for a board whose SoC is unknown; the armhf (glibc) files need glibc's loader, which this board lacks"),
])
def test_a_c_library_that_no_file_of_a_bundle_fits_is_explained(args, reason):
    assert libc_mismatch(*args) == reason


@pytest.mark.parametrize("data,libc", [
    (b"\x7fELF\0\0\0libc.so.0\0", "uclibc"),
    (b"\x7fELF /lib/ld-uClibc.so.0\0", "uclibc"),
    (b"\x7fELF\0ld-uClibc.so.0\0libc.so.6\0", "uclibc"),
    (b"\x7fELF\0libc.so.6\0", "glibc"),
    (b"\x7fELF\0mylibc.so.6\0libc.so.0x\0", ""),          # only whole names count
    (b"\x7fELF static", ""),
    (b"#!/bin/sh\0libc.so.0\0", ""),                    # not an ELF file
    (b"", ""),
])
def test_elf_libc_reads_the_c_library_from_the_names_an_elf_file_needs(data, libc):
    assert elf_libc(data) == libc


# -- --runtime ARCH=PATH -----------------------------------------------------------------------------------

def test_runtime_options_map_each_architecture_to_its_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_runtime_options(None) == {}
    # empty items (a doubled or trailing comma) are skipped; a later value for an architecture wins
    assert parse_runtime_options(["aarch64=/a/librknnrt.so,, armhf=~/b.so,", " ", "armhf-uclibc=/c,aarch64=/d"]) == {
        "aarch64": Path("/d"), "armhf": tmp_path / "b.so", "armhf-uclibc": Path("/c")}
    # only the first "=" separates: a path may hold one
    assert parse_runtime_options(["aarch64=/opt/rknn=2.3.2/librknnrt.so"]) == {
        "aarch64": Path("/opt/rknn=2.3.2/librknnrt.so")}


@pytest.mark.parametrize("value,item", [
    ("arm64=/x", "arm64=/x"),
    ("aarch64=/a, armhf ", "armhf"),
    ("aarch64=", "aarch64="),
    ("=/x", "=/x"),
])
def test_a_runtime_option_that_is_not_arch_equals_path_is_refused_naming_it(value, item):
    with pytest.raises(BundleError) as e:
        parse_runtime_options([value])
    assert str(e.value) == f"--runtime {item}: expected ARCH=PATH with ARCH one of aarch64, armhf, armhf-uclibc"
