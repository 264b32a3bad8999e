"""SDK bundles from SDK trees: layouts, version strings, refusals, and verification of what was imported."""
import shutil
import subprocess

import pytest

import yaml

from rkdeploy.bundle import BundleError, import_sdk, load_bundle, verify
from rkdeploy.probe import parse_probe
from rkdeploy.provision import plan_provision


def fake_tree(root, layout="1.6+", runtime="2.3.2 (429f97ae6b@2025-04-09T09:09:27)",
              server="rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)"):
    """An SDK tree whose binaries are plain files carrying the version strings (the reader only reads strings)."""
    api, srv = (("rknpu2/runtime/Linux/librknn_api", "rknpu2/runtime/Linux/rknn_server") if layout == "1.6+"
                else ("runtime/RK3588/Linux/librknn_api", "runtime/RK3588/Linux/rknn_server"))
    (root / api / "aarch64").mkdir(parents=True)
    (root / api / "aarch64/librknnrt.so").write_bytes(b"\x7fELF\0\0" + f"librknnrt version: {runtime}".encode() + b"\0")
    (root / api / "include").mkdir()
    (root / api / "include/rknn_api.h").write_text("/* header */\n")
    bindir = root / srv / "aarch64/usr/bin"
    bindir.mkdir(parents=True)
    # laid out as Rockchip's 1.5.2+ servers are: the label and the bare version first, the named form later
    bare = server.removeprefix("rknn_server version: ")
    (bindir / "rknn_server").write_bytes(b"\x7fELF\0\0rknn_server: \0\0\0" + bare.encode() + b"\0\0\nrknnrt: \0"
                                         + server.encode() + b"\0")
    (bindir / "start_rknn.sh").write_text("#!/bin/sh\n")
    (bindir / "restart_rknn.sh").write_text("#!/bin/sh\n")
    return root


def test_a_2x_tree_becomes_a_bundle_with_destinations_modes_and_version_strings(tmp_path):
    bundle = import_sdk(fake_tree(tmp_path / "sdk"), tmp_path / "bundles", python_tags=[], log=lambda m: None)
    assert bundle.version == "2.3.2" and bundle.layout == "1.6+"
    by_role = {f.role: f for f in bundle.files}
    assert by_role["runtime"].dest == "/usr/lib/librknnrt.so" and by_role["runtime"].mode == "0644"
    assert by_role["server"].dest == "/usr/bin/rknn_server" and by_role["server"].mode == "0755"
    assert by_role["header"].dest == "/usr/include/rknn_api.h"
    assert by_role["runtime"].version_string == "librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)"
    assert by_role["server"].version_string == "rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)"
    again = load_bundle(tmp_path / "bundles", "2.3.2")
    assert [f.sha256 for f in again.files] == [f.sha256 for f in bundle.files]
    assert verify(again) == []


def test_the_1_5_layout_with_the_bare_server_string_is_read_too(tmp_path):
    tree = fake_tree(tmp_path / "sdk", layout="1.4-1.5", runtime="1.5.0 (e6fe0c678@2023-05-25T08:09:53)",
                     server="1.5.0 (17e11b1 build: 2023-05-18 21:43:39)")
    bundle = import_sdk(tree, tmp_path / "bundles", python_tags=[], log=lambda m: None)
    assert (bundle.version, bundle.layout) == ("1.5.0", "1.4-1.5")


def test_a_directory_that_is_not_an_sdk_says_what_was_expected(tmp_path):
    with pytest.raises(BundleError, match="not an RKNN SDK tree: expected rknpu2/runtime/Linux/librknn_api"):
        import_sdk(tmp_path, tmp_path / "bundles", python_tags=[])


def test_mixed_versions_inside_one_tree_are_refused_naming_both(tmp_path):
    tree = fake_tree(tmp_path / "sdk", server="rknn_server version: 1.6.0 (0000000 build@2023-12-13T17:40:00)")
    with pytest.raises(BundleError, match=r"mixed versions.*librknnrt 2\.3\.2.*rknn_server 1\.6\.0"):
        import_sdk(tree, tmp_path / "bundles", python_tags=[])
    assert not (tmp_path / "bundles/2.3.2").exists()


def test_verify_names_a_tampered_and_a_truncated_file(tmp_path):
    bundle = import_sdk(fake_tree(tmp_path / "sdk"), tmp_path / "bundles", python_tags=[], log=lambda m: None)
    runtime = bundle.files_dir / "aarch64/librknnrt.so"
    runtime.write_bytes(runtime.read_bytes().replace(b"2.3.2", b"2.3.3"))
    header = bundle.files_dir / "include/rknn_api.h"
    header.write_text("/*")
    problems = verify(load_bundle(tmp_path / "bundles", "2.3.2"))
    assert any(str(runtime) in p and "content changed" in p for p in problems)
    assert any(str(header) in p and "truncated" in p for p in problems)


def test_the_lab_stand_in_tree_imports_with_real_lite2_wheels_for_cp311(tmp_path):
    if not shutil.which("aarch64-linux-gnu-gcc"):
        pytest.skip("needs the cross compiler (scripts/setup.sh installs it)")
    from tests.lab.sdk import cached_tree

    from tests.wheels import missing_hint, offline

    try:
        tree = cached_tree("2.3.2")
    except subprocess.CalledProcessError:
        pytest.skip(missing_hint("rknn-toolkit-lite2 2.3.2 (aarch64, cp311)"))
    logs = []
    bundle = import_sdk(tree, tmp_path / "bundles", python_tags=["cp311"], log=logs.append, pip_options=offline())
    if "cp311" not in bundle.wheels:
        from tests.rockchip_files import in_ci
        (pytest.fail if in_ci() else pytest.skip)(missing_hint("lite2 2.3.2's dependencies") + ": " + " ".join(logs))
    wheels = bundle.wheels["cp311"]
    assert any(w.startswith("rknn_toolkit_lite2-2.3.2-cp311") for w in wheels)
    assert any(w.startswith("numpy-") for w in wheels) and any(w.startswith("pip-") for w in wheels)
    assert {f.arch for f in bundle.files} == {"aarch64", "armhf", "any"}


def rknpu2_tree(root, release="1.5.2"):
    """The 1.4–1.5 rknpu2 layout: one build per SoC family, RV1106's mini runtime and its server under arm/."""
    def put(path, content):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF\0" + content.encode() + b"\0")
    for soc_dir, build in (("RK3588", "aa"), ("RK356X", "bb"), ("RV1106", "cc")):
        base = root / "runtime" / soc_dir / "Linux"
        lib_arches = ("armhf",) if soc_dir == "RV1106" else ("aarch64", "armhf")
        for arch in lib_arches:
            name = "librknnmrt" if soc_dir == "RV1106" else "librknnrt"
            put(base / "librknn_api" / arch / f"{name}.so", f"{name} version: {release} (c6b7b351a@2023-08-23T15:29:04)")
            if soc_dir == "RV1106":
                put(base / "librknn_api" / arch / f"{name}.a", "static")
        for arch in (("arm",) if soc_dir == "RV1106" else ("aarch64", "armhf")):
            put(base / "rknn_server" / arch / "usr/bin/rknn_server",
                f"rknn_server version: {release} (8babfea build@2023-08-25T10:30:{build})")
            put(base / "rknn_server" / arch / "usr/bin/start_rknn.sh", "#!/bin/sh")
            put(base / "rknn_server" / arch / "usr/bin/restart_rknn.sh", "#!/bin/sh")
        put(base / "librknn_api/include/rknn_api.h", f"/* {soc_dir} */")
    return root


def board(soc, arch="aarch64"):
    return parse_probe(f"uname=b 6.1 {arch}\ncompatible=vendor,board rockchip,{soc}\nsudo=root\nend=ok\n")


def test_the_rknpu2_layout_keeps_each_soc_familys_build_and_provision_picks_by_the_boards_soc(tmp_path):
    bundle = import_sdk(rknpu2_tree(tmp_path / "rknpu2"), tmp_path / "bundles", python_tags=[], log=lambda m: None)
    assert bundle.layout == "1.4-1.5"
    runtimes = {(f.arch, tuple(f.socs)): f for f in bundle.files if f.role == "runtime"}
    assert set(runtimes) == {("aarch64", ("rk3588", "rk3588s")), ("aarch64", ("rk3566", "rk3568")),
                             ("armhf", ("rk3588", "rk3588s")), ("armhf", ("rk3566", "rk3568")), ("armhf-uclibc", ())}
    uclibc = {f.role: f for f in bundle.files if f.arch == "armhf-uclibc"}
    assert uclibc["runtime"].dest == "/oem/usr/lib/librknnmrt.so" and uclibc["server"].dest == "/oem/usr/bin/rknn_server"
    assert not any(f.path.endswith(".a") for f in bundle.files)
    servers = {soc: next(f for f in bundle.for_arch("aarch64", soc) if f.role == "server") for soc in ("rk3568", "rk3588s")}
    assert servers["rk3568"].path == "aarch64/RK356X/rknn_server" and servers["rk3588s"].path == "aarch64/RK3588/rknn_server"
    loaded = load_bundle(tmp_path / "bundles", "1.5.2")
    plan = plan_provision("rk3566-box", board("rk3566"), loaded)
    assert not plan.refused
    assert {s.file.path for s in plan.steps if s.file} >= {"aarch64/RK356X/librknnrt.so", "include/RK356X/rknn_api.h"}
    rv = plan_provision("cam", board("rv1106", "armv7l"), loaded)
    assert {s.file.dest for s in rv.steps if s.file} == {"/oem/usr/lib/librknnmrt.so", "/oem/usr/bin/rknn_server",
                                                         "/oem/usr/bin/start_rknn.sh", "/oem/usr/bin/restart_rknn.sh"}
    other = plan_provision("rk3576-box", board("rk3576"), loaded)
    assert "librknnrt.so for aarch64 only for rk3566/rk3568, rk3588/rk3588s, not for SoC rk3576" in other.refused
    assert "--runtime aarch64=PATH/librknnrt.so" in other.refused


def test_a_tree_without_the_aarch64_runtime_is_said_at_import_and_refused_at_provision_naming_the_fix(tmp_path):
    tree = fake_tree(tmp_path / "sdk")
    (tree / "rknpu2/runtime/Linux/librknn_api/aarch64/librknnrt.so").unlink()
    (tree / "rknpu2/runtime/Linux/librknn_api/armhf").mkdir()
    (tree / "rknpu2/runtime/Linux/librknn_api/armhf/librknnrt.so").write_bytes(
        b"\0librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\0")
    logs = []
    bundle = import_sdk(tree, tmp_path / "bundles", python_tags=[], log=logs.append)
    assert any(line.startswith("bundle 2.3.2: aarch64: server") and "missing: runtime" in line
               and "--runtime aarch64=PATH/librknnrt.so" in line for line in logs), logs
    assert bundle.parts()["aarch64"]["missing"] == ["runtime", "lite2"]
    assert bundle.parts()["armhf"]["runtime"] == ["any SoC"]
    plan = plan_provision("box", board("rk3588"), load_bundle(tmp_path / "bundles", "2.3.2"))
    assert plan.refused.startswith("bundle 2.3.2 has no librknnrt.so for aarch64")
    assert "inv bundle.import SDK_PATH --runtime aarch64=PATH/librknnrt.so" in plan.refused
    # the user adds Rockchip's aarch64 runtime from elsewhere
    extra = tmp_path / "elsewhere/librknnrt.so"
    extra.parent.mkdir()
    extra.write_bytes(b"\0librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\0")
    bundle = import_sdk(tree, tmp_path / "bundles", python_tags=[], log=lambda m: None, runtimes={"aarch64": extra})
    assert bundle.parts()["aarch64"]["runtime"] == ["any SoC"]
    assert not plan_provision("box", board("rk3588"), load_bundle(tmp_path / "bundles", "2.3.2")).refused


def test_runtime_options_are_arch_equals_path_repeatable_or_comma_separated():
    from rkdeploy.bundle import parse_runtime_options

    assert set(parse_runtime_options(["aarch64=/a/librknnrt.so,armhf=/b/librknnrt.so", "armhf-uclibc=/c"])) == \
        {"aarch64", "armhf", "armhf-uclibc"}
    with pytest.raises(BundleError, match="ARCH=PATH"):
        parse_runtime_options(["arm64=/x"])


@pytest.mark.parametrize("change,field", [
    (lambda d: d.pop("version"), "version: missing"),
    (lambda d: d.update(version=2.3), "version: 2.3 is not a plain release"),
    (lambda d: d.update(version="2.3.2; rm -rf /"), "version: "),
    (lambda d: d.update(files="x"), "files: missing or not a list"),
    (lambda d: d["files"][0].update(mode="4755"), "files[0].mode"),
    (lambda d: d["files"][0].update(mode=644), "files[0].mode"),
    (lambda d: d["files"][0].update(sha256="abc"), "files[0].sha256"),
    (lambda d: d["files"][0].update(dest="/etc/passwd"), "files[0].dest"),
    (lambda d: d["files"][0].update(dest="/usr/lib/../../etc/shadow"), "files[0].dest"),
    (lambda d: d["files"][0].update(dest="usr/lib/librknnrt.so"), "files[0].dest"),
    (lambda d: d["files"][0].update(path="../../../etc/passwd"), "files[0].path"),
    (lambda d: d["files"][0].update(size="12"), "files[0].size"),
    (lambda d: d["files"][0].update(role="anything"), "files[0].role"),
    (lambda d: d["files"][0].update(evil=1), "files[0].evil: unknown field"),
    (lambda d: d["files"][0].pop("sha256"), "files[0].sha256: missing"),
    (lambda d: d.update(wheels={"cp311": ["../x.whl"]}), "wheels.cp311"),
])
def test_an_untrusted_manifest_is_refused_naming_the_manifest_and_the_field(tmp_path, change, field):
    import_sdk(fake_tree(tmp_path / "sdk"), tmp_path / "bundles", python_tags=[], log=lambda m: None)
    manifest = tmp_path / "bundles/2.3.2/bundle.yaml"
    doc = yaml.safe_load(manifest.read_text())
    change(doc)
    manifest.write_text(yaml.safe_dump(doc))
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path / "bundles", "2.3.2")
    assert str(manifest) in str(e.value) and field in str(e.value)


def test_a_manifest_that_is_not_yaml_or_not_a_mapping_is_a_bundle_error(tmp_path):
    (tmp_path / "2.3.2").mkdir()
    for text in ("- just\n- a list\n", "version: [unclosed\n", ""):
        (tmp_path / "2.3.2/bundle.yaml").write_text(text)
        with pytest.raises(BundleError, match="bundle.yaml"):
            load_bundle(tmp_path, "2.3.2")
    with pytest.raises(BundleError, match="not a bundle version"):
        load_bundle(tmp_path, "../etc")


def board_with_libc(soc, arch, libc):
    return parse_probe(f"uname=b 6.1 {arch}\nlibc={libc}\ncompatible=vendor,board rockchip,{soc}\nsudo=root\nend=ok\n")


def test_the_boards_c_library_picks_armhf_or_armhf_uclibc_and_a_mismatch_is_refused_with_the_reason(tmp_path):
    import_sdk(rknpu2_tree(tmp_path / "rknpu2"), tmp_path / "bundles", python_tags=[], log=lambda m: None)
    loaded = load_bundle(tmp_path / "bundles", "1.5.2")
    uclibc = plan_provision("cam", board_with_libc("rv1103", "armv7l", "uclibc"), loaded)
    assert uclibc.arch == "armhf-uclibc" and uclibc.server_dir == "/oem/usr/bin" and not uclibc.refused
    assert all(s.file.arch == "armhf-uclibc" for s in uclibc.steps if s.file)
    assert any("no Python on this board" in n for n in uclibc.notes)
    glibc_rv = plan_provision("cam", board_with_libc("rv1106", "armv7l", "glibc"), loaded)
    assert "runs glibc" in glibc_rv.refused and "for uClibc only" in glibc_rv.refused and not glibc_rv.steps
    uclibc_rk = plan_provision("odd", board_with_libc("rk3588", "armv7l", "uclibc"), loaded)
    assert "runs uClibc" in uclibc_rk.refused and "not for SoC rk3588" in uclibc_rk.refused
    glibc_rk = plan_provision("rk", board_with_libc("rk3588", "armv7l", "glibc"), loaded)
    assert glibc_rk.arch == "armhf" and glibc_rk.server_dir == "/usr/bin"
    assert {s.file.arch for s in glibc_rk.steps if s.file} <= {"armhf", "any"}


def test_elf_libc_tells_uclibc_from_glibc_builds_and_import_refuses_the_wrong_one(tmp_path):
    from rkdeploy.bundle import elf_libc
    assert elf_libc(b"\x7fELF..\0libc.so.0\0..") == "uclibc" and elf_libc(b"\x7fELF /lib/ld-uClibc.so.0\0") == "uclibc"
    assert elf_libc(b"\x7fELF..\0libc.so.6\0..") == "glibc" and elf_libc(b"#!/bin/sh\nlibc.so.6") == ""
    tree = fake_tree(tmp_path / "sdk")
    glibc = tmp_path / "librknnmrt.so"
    glibc.write_bytes(b"\x7fELF\0libc.so.6\0librknnmrt version: 2.3.2 (429f97ae6b@2025-04-09T09:11:49)\0")
    with pytest.raises(BundleError, match="a glibc build .* armhf-uclibc files must be uclibc builds"):
        import_sdk(tree, tmp_path / "bundles", python_tags=[], log=lambda m: None, runtimes={"armhf-uclibc": glibc})
