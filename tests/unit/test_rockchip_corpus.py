"""Rockchip's real files (tests/rockchip_files.py): every runtime and rknn_server of the corpus is read, by
bundle.import and by the board probe's grep, as the exact one-line version string it carries and the
release its folder names; every SDK tree imports (docs/sdk-releases.md)."""
import re
import subprocess

import pytest

from rkdeploy.bundle import BundleError, _read_strings, import_sdk, load_bundle
from rkdeploy.probe import version_script
from rkdeploy.versions import parse_runtime, parse_server
from tests.rockchip_files import need, rockchip_dir, sdk_tree, sdk_trees

# The forms verified on the corpus (docs/sdk-releases.md, "Version strings").
RUNTIME_FORM = re.compile(r"librknnm?rt version: \d+\.\d+\.\d+ \([0-9a-f]{9,10}@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)")
SERVER_NAMED_FORM = re.compile(r"rknn_server version: \d+\.\d+\.\d+(b\d+)? \([0-9a-f]{7} build@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)")
SERVER_BARE_FORM = re.compile(r"\d+\.\d+\.\d+ \([0-9a-f]{7} build: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)")


def corpus_binaries():
    root = rockchip_dir()
    if not root.is_dir():
        return []
    found = [p for name in ("librknnrt.so", "librknnmrt.so", "rknn_server") for p in root.rglob(name) if p.is_file()]
    return sorted(found)


def release_named_by_folder(path):
    parts = path.relative_to(rockchip_dir()).parts
    if parts[0] == "servers":
        return parts[1]
    m = re.fullmatch(r"[\w-]+-v(\d[\w.]*)", parts[1])
    return m.group(1)


def read(path):
    return (parse_server if path.name == "rknn_server" else parse_runtime)


def test_the_corpus_is_there_with_every_kind_of_binary():
    need(rockchip_dir() / "sdk-trees", "SDK trees")
    names = {p.name for p in corpus_binaries()}
    assert names == {"librknnrt.so", "librknnmrt.so", "rknn_server"}
    assert len(corpus_binaries()) >= 36


@pytest.mark.parametrize("path", corpus_binaries(), ids=lambda p: str(p.relative_to(rockchip_dir())))
def test_bundle_import_and_the_probe_read_the_same_exact_version_string_and_the_folders_release(path):
    expected = release_named_by_folder(path)
    v = read(path)(_read_strings(path))
    assert v is not None and v.release == expected
    assert "\n" not in v.raw and v.raw == v.raw.strip()
    if path.name == "rknn_server":
        form = SERVER_NAMED_FORM if v.raw.startswith("rknn_server version:") else SERVER_BARE_FORM
        assert form.fullmatch(v.raw), v.raw
        # servers from 1.5.2 on carry the named form, and it is the one read
        assert v.raw.startswith("rknn_server version:") == (b"rknn_server version: " in path.read_bytes())
    else:
        assert RUNTIME_FORM.fullmatch(v.raw), v.raw
        assert v.raw.startswith(path.name.removesuffix(".so") + " version:")
    out = subprocess.run(["/bin/sh", "-c", version_script(str(path))], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.count("\n") == 1
    on_board = read(path)(out.stdout)
    assert (on_board.release, on_board.raw, on_board.build) == (v.release, v.raw, v.build)


@pytest.mark.parametrize("name", ["rknpu2-v1.4.0", "rknpu2-v1.5.2", "rknn-toolkit2-v1.6.0", "rknn-toolkit2-v2.2.0",
                                  "rknn-toolkit2-v2.3.2"])
def test_every_sdk_tree_imports_with_its_release_and_exact_version_strings(tmp_path, name):
    tree = need(sdk_tree(name))
    logs = []
    bundle = import_sdk(tree, tmp_path / "bundles", python_tags=[], log=logs.append)
    assert bundle.version == name.rsplit("-v", 1)[1]
    for f in bundle.files:
        if f.role in ("runtime", "server"):
            assert "\n" not in f.version_string and read(bundle.files_dir / f.path)(f.version_string).release == bundle.version
    assert not any(p.suffix == ".a" for p in (bundle.files_dir).rglob("*"))
    again = load_bundle(tmp_path / "bundles", bundle.version)
    assert again.parts() == bundle.parts()
    # what the tree lacks is said per architecture, never silently
    for arch, parts in bundle.parts().items():
        if "runtime" in parts["missing"]:
            assert any(line.startswith(f"bundle {bundle.version}: {arch}: ") and f"--runtime {arch}=" in line
                       for line in logs)


def test_what_each_tree_imports_to_per_architecture(tmp_path):
    for tree in sdk_trees() or [need(sdk_tree("rknn-toolkit2-v2.3.2"))]:
        if tree.name == "rknn-toolkit2-v1.5.2":
            continue
        parts = import_sdk(tree, tmp_path / tree.name, python_tags=[], log=lambda m: None).parts()
        uclibc = parts["armhf-uclibc"]
        assert uclibc["runtime"] == ["any SoC"]
        if tree.name.startswith("rknpu2-"):
            assert parts["armhf"]["runtime"] == ["rk3566/rk3568", "rk3588/rk3588s"]
            assert parts["aarch64"]["server"] == ["rk3566/rk3568", "rk3588/rk3588s"]
        has_aarch64_runtime = tree.name == "rknpu2-v1.4.0"
        assert ("runtime" in parts["aarch64"]["missing"]) != has_aarch64_runtime, tree.name
        assert ("server" in uclibc["missing"]) == (tree.name == "rknpu2-v1.4.0")


def test_the_1_5_toolkit_tree_alone_says_what_to_run_and_with_rknpu2_makes_one_bundle(tmp_path):
    toolkit, rknpu2 = need(sdk_tree("rknn-toolkit2-v1.5.2")), need(sdk_tree("rknpu2-v1.5.2"))
    with pytest.raises(BundleError, match=r"Run instead: inv bundle.import PATH/TO/rknpu2 --lite2-from .*rknn-toolkit2-v1\.5\.2"):
        import_sdk(toolkit, tmp_path / "bundles", python_tags=[])
    bundle = import_sdk(rknpu2, tmp_path / "bundles", python_tags=[], log=lambda m: None, lite2_from=toolkit)
    assert bundle.version == "1.5.2"
    with pytest.raises(BundleError, match=r"lite2 wheels are 1\.6\.0.*is 1\.5\.2"):
        import_sdk(rknpu2, tmp_path / "bundles", python_tags=[], lite2_from=need(sdk_tree("rknn-toolkit2-v1.6.0")))


def test_a_runtime_from_elsewhere_must_be_of_the_trees_release(tmp_path):
    tree = need(sdk_tree("rknn-toolkit2-v1.6.0"))
    other = need(sdk_tree("rknpu2-v1.5.2") / "runtime/RK3588/Linux/librknn_api/armhf/librknnrt.so")
    with pytest.raises(BundleError, match=r"--runtime armhf=.*librknnrt version: 1\.5\.2.*the SDK tree is 1\.6\.0"):
        import_sdk(tree, tmp_path / "bundles", python_tags=[], runtimes={"armhf": other})


def test_linux_aarch64_lite2_wheels_give_an_offline_wheelhouse_with_their_dependencies(tmp_path):
    tree = need(sdk_tree("rknn-toolkit2-v1.6.0"))
    logs = []
    bundle = import_sdk(tree, tmp_path / "bundles", python_tags=["cp311"], log=logs.append)
    if "cp311" not in bundle.wheels:
        from tests.rockchip_files import in_ci
        if in_ci():
            pytest.fail("\n".join(logs))
        pytest.skip(f"no package index reachable: {logs[-1] if logs else ''}")
    wheels = bundle.wheels["cp311"]
    assert "rknn_toolkit_lite2-1.6.0-cp311-cp311-linux_aarch64.whl" in wheels
    for dep in ("numpy-", "psutil-", "ruamel", "pip-"):
        assert any(w.lower().startswith(dep) for w in wheels), (dep, wheels)
    assert bundle.parts()["aarch64"]["lite2"] == ["cp311"]
