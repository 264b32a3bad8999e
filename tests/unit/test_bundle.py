"""SDK bundles from SDK trees: layouts, version strings, refusals, and verification of what was imported."""
import shutil
import subprocess

import pytest

from rkdeploy.bundle import BundleError, import_sdk, load_bundle, verify


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
    (bindir / "rknn_server").write_bytes(b"\x7fELF\0\0" + server.encode() + b"\0")
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
    assert "429f97ae6b" in by_role["runtime"].version_string
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

    try:
        tree = cached_tree("2.3.2")
    except subprocess.CalledProcessError:
        pytest.skip("no package index reachable")
    bundle = import_sdk(tree, tmp_path / "bundles", python_tags=["cp311"], log=lambda m: None)
    wheels = bundle.wheels["cp311"]
    assert any(w.startswith("rknn_toolkit_lite2-2.3.2-cp311") for w in wheels)
    assert any(w.startswith("numpy-") for w in wheels) and any(w.startswith("pip-") for w in wheels)
    assert {f.arch for f in bundle.files} == {"aarch64", "armhf", "any"}
