"""Provision and deploy plans from facts and a bundle or model: what would change, without SSH."""
import pytest

from rkdeploy.bundle import Bundle, BundleFile
from rkdeploy.deploy import plan_deploy, validate
from rkdeploy.probe import parse_probe
from rkdeploy.provision import install_script, plan_provision
from rkdeploy.rknn_model import read_model
from tests.conftest import FIXTURES
from tests.lab import modelgen

PROBES = FIXTURES / "probe"


def rk3588_model(tmp_path):
    """Any rk3588 model built by toolkit 2.3.1 (format 6) will do."""
    return read_model(modelgen.write(tmp_path / "det.rknn", soc="rk3588", format=6, toolkit="2.3.1-source_code"))


def facts(name="rk3588-mismatch.txt"):
    return parse_probe((PROBES / name).read_text())


def bundle(runtime_sha="c3cc9539522c9ff7ad1051e931f8670cffaba614c5683dd090608ada2bee1968", wheels=None):
    files = [BundleFile("runtime", "aarch64", "aarch64/librknnrt.so", "/usr/lib/librknnrt.so", runtime_sha, 67432),
             BundleFile("server", "aarch64", "aarch64/rknn_server", "/usr/bin/rknn_server", "f" * 64, 67680, "0755"),
             BundleFile("start_script", "aarch64", "aarch64/start_rknn.sh", "/usr/bin/start_rknn.sh",
                        "1cb242acbe514a373470e40aea4359140979c4bee1761cb895ad5be19296dc90", 216, "0755")]
    return Bundle("2.3.2", root=None, layout="1.6+", files=files, wheels=wheels or {})


def test_only_files_whose_sha_differs_are_planned_and_a_changed_server_means_a_restart():
    plan = plan_provision("box3", facts(), bundle(wheels={"cp311": ["pip-26.whl", "rknn_toolkit_lite2-2.3.2.whl"]}))
    kinds = [(s.kind, s.file.dest if s.file else None) for s in plan.steps]
    assert ("file", "/usr/bin/rknn_server") in kinds
    assert ("file", "/usr/lib/librknnrt.so") not in kinds and ("file", "/usr/bin/start_rknn.sh") not in kinds
    assert kinds[-1] == ("server", None) and "restart" in plan.steps[-1].what
    assert any(s.kind == "lite2" for s in plan.steps)
    assert not any(s.kind == "pip" for s in plan.steps)         # pip 23.0.1 takes manylinux2014
    assert plan.bytes == 67680


def test_a_board_that_matches_the_bundle_gets_an_empty_plan():
    board = facts()
    board.files["/usr/bin/rknn_server"] = "f" * 64
    board.lite2 = parse_probe("lite2=2.3.2\nend=ok").lite2
    plan = plan_provision("box3", board, bundle(wheels={"cp311": ["x.whl"]}))
    assert plan.steps == [] and not plan.refused


def test_an_old_pip_is_upgraded_from_the_wheelhouse_first():
    board = facts()
    board.pip = "9.0.1"
    plan = plan_provision("old", board, bundle(wheels={"cp311": ["pip-26.whl", "rknn_toolkit_lite2-2.3.2.whl"]}))
    pip = [s for s in plan.steps if s.kind == "pip"]
    assert pip and pip[0].wheels == ["pip-26.whl"] and "19.3" in pip[0].what


def test_no_wheel_for_the_boards_python_is_a_note_listing_the_tags_that_exist():
    board = facts()
    board.python_tag = "cp39"
    plan = plan_provision("b", board, bundle(wheels={"cp310": ["a"], "cp311": ["b"]}))
    assert any("no lite2 wheel for cp39 (has: cp310, cp311)" in n for n in plan.notes)


def test_boards_the_bundle_cannot_serve_are_refused_with_the_reason():
    board = facts()
    board.arch = "x86_64"
    assert "aarch64 and armhf only" in plan_provision("pc", board, bundle()).refused
    board = facts()
    board.sudo, board.root_mode = "no", "sudo-password"
    assert "--prompt-for-sudo-password" in plan_provision("b", board, bundle()).refused


@pytest.mark.parametrize("mode, password, says, never", [
    ("root", "", None, None),
    ("sudo", "", None, None),
    ("sudo-password", "ok", None, None),
    ("sudo-password", "", "--prompt-for-sudo-password", None),
    ("sudo-password", "refused", "sudo refused the password", None),
    ("sudo-password", "uncached", "timestamp_timeout=0", None),
    ("no-sudo-rights", "", "usermod -aG sudo rock", "--prompt-for-sudo-password"),
    ("no-sudo", "", "install sudo", "--prompt-for-sudo-password"),
])
def test_provision_is_refused_per_root_mode_with_the_advice_that_fits(mode, password, says, never):
    board = facts()
    board.user, board.root_mode, board.root_password = "rock", mode, password
    refused = plan_provision("b", board, bundle()).refused
    if says is None:
        assert refused == ""
    else:
        assert refused.startswith("installing needs root and ") and says in refused
        assert never is None or never not in refused
        assert mode not in ("no-sudo-rights", "no-sudo") or "log in as root" in refused


def test_the_install_script_verifies_every_file_before_renaming_any():
    b = bundle()
    script = install_script([(b.files[0], "/usr/lib/.librknnrt.so.rkdeploy-1"), (b.files[1], "/usr/bin/.rknn_server.rkdeploy-2")])
    lines = script.splitlines()
    checks = [i for i, line in enumerate(lines) if "sha256sum" in line]
    renames = [i for i, line in enumerate(lines) if line.startswith('mv -f "$tmp_')]
    assert len(checks) == 2 and len(renames) == 2 and max(checks) < min(renames)


def test_the_install_script_takes_every_manifest_value_as_a_parameter_and_works(tmp_path):
    """Run for real with /bin/sh in a scratch tree: paths with spaces and quotes stay data."""
    import dataclasses
    import hashlib
    import subprocess

    root = tmp_path / "it's a root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/old.so").write_bytes(b"old")
    files, uploads = [], []
    for name, data in (("old.so", b"new runtime"), ("$(touch pwned).so", b"second")):
        tmp = root / "usr/lib" / f".{name}.rkdeploy-1"
        tmp.write_bytes(data)
        f = dataclasses.replace(bundle().files[0], dest=str(root / "usr/lib" / name),
                                sha256=hashlib.sha256(data).hexdigest(), mode="0640")
        uploads.append((f, str(tmp)))
    script = install_script(uploads, backup_dir=str(tmp_path / "backup"))
    assert "pwned" not in script[script.index("set -e\n"):]       # the body: fixed text, values only as "$var"
    done = subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (root / "usr/lib/old.so").read_bytes() == b"new runtime"
    assert (root / "usr/lib/$(touch pwned).so").read_bytes() == b"second"
    assert not (tmp_path / "pwned").exists() and oct((root / "usr/lib/old.so").stat().st_mode)[-3:] == "640"
    manifest = (tmp_path / "backup/manifest").read_text()
    assert f"replaced {root}/usr/lib/old.so" in manifest and "added" in manifest
    assert (tmp_path / "backup" / str(root / "usr/lib/old.so").lstrip("/")).read_bytes() == b"old"


def test_the_install_script_renames_nothing_and_fails_when_one_checksum_does_not_match(tmp_path):
    """Run for real with /bin/sh: the second file's sha256 is not the manifest's, so nothing is renamed, no
    backup is recorded, the temporary files are removed, and the script exits non-zero naming the file.
    (With the check inverted, the test above fails instead: its files match.)"""
    import dataclasses
    import hashlib
    import subprocess

    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/a.so").write_bytes(b"old a")
    (root / "usr/lib/b.so").write_bytes(b"old b")
    uploads = []
    for name, data, claimed in (("a.so", b"new a", b"new a"), ("b.so", b"new b, cut short", b"new b")):
        tmp = root / "usr/lib" / f".{name}.rkdeploy-1"
        tmp.write_bytes(data)
        f = dataclasses.replace(bundle().files[0], dest=str(root / "usr/lib" / name),
                                sha256=hashlib.sha256(claimed).hexdigest(), mode="0644")
        uploads.append((f, str(tmp)))
    done = subprocess.run(["/bin/sh", "-c", install_script(uploads, backup_dir=str(tmp_path / "backup"))],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert f"checksum of {root}/usr/lib/b.so wrong after upload" in done.stderr
    assert (root / "usr/lib/a.so").read_bytes() == b"old a" and (root / "usr/lib/b.so").read_bytes() == b"old b"
    assert sorted(p.name for p in (root / "usr/lib").iterdir()) == ["a.so", "b.so"]    # temporaries removed
    assert not (tmp_path / "backup/manifest").exists() and not (tmp_path / "backup/manifest.new").exists()


def test_deploy_validation_names_platform_toolkit_and_space_problems(tmp_path):
    model = rk3588_model(tmp_path)
    field = facts("rk3588-field-1.5.0.txt")
    assert any("Invalid RKNN model version 6" in p for p in validate(model, field))
    rk3568 = facts()
    rk3568.compatible = ["rockchip,rk3568"]
    assert any("built for rk3588, rk3588s but the board is rk3568" in p for p in validate(model, rk3568))
    tight = facts()
    tight.model_dir_free_kb = 100
    assert any("not enough space" in p for p in validate(model, tight))
    assert validate(model, facts()) == []


def test_deploy_plans_nothing_for_the_active_version_and_prunes_beyond_keep(tmp_path):
    model = rk3588_model(tmp_path)
    board = facts()
    board.models_current["det"] = f"versions/{model.sha256[:12]}.rknn"
    assert plan_deploy(model, "det", board, "b", keep=3, force=False).action == "none"
    board = facts()
    board.model_versions = [{"name": "det", "sha256": c * 64, "deployed_at": f"2026-01-0{i}"} for i, c in enumerate("abc", 1)]
    board.models_current["det"] = "versions/" + "c" * 12 + ".rknn"
    plan = plan_deploy(model, "det", board, "b", keep=3, force=False)
    assert plan.action == "upload" and plan.prune == ["a" * 12]


def test_forcing_a_refused_deploy_is_recorded_as_forced(tmp_path):
    model = rk3588_model(tmp_path)
    plan = plan_deploy(model, "det", facts("rk3588-field-1.5.0.txt"), "b", keep=3, force=True)
    assert plan.action == "upload" and plan.forced and plan.problems


def test_persist_installs_a_unit_where_systemd_runs_and_says_why_not_elsewhere():
    board = facts()
    board.systemd = True
    plan = plan_provision("b", board, bundle(), persist=True)
    assert any(s.kind == "persist" for s in plan.steps) and "systemd" in plan.steps[-1].what
    board.systemd = False
    plan = plan_provision("b", board, bundle(), persist=True)
    assert not any(s.kind == "persist" for s in plan.steps)
    assert any("does not run systemd" in n for n in plan.notes)


@pytest.mark.parametrize("mode, password, refused_with", [
    ("root", None, None), ("sudo", None, None), ("sudo-password", "pw", None),
    ("sudo-password", None, "--prompt-for-sudo-password"), ("no-sudo-rights", None, "usermod -aG sudo"),
    ("no-sudo", None, "install sudo"),
])
def test_a_first_deploy_to_a_root_owned_model_dir_is_planned_per_root_mode(tmp_path, mode, password, refused_with):
    from rkdeploy.connection import SshSettings
    from rkdeploy.deploy import _root_check
    from rkdeploy.inventory import Board
    from rkdeploy.session import BoardSession

    model = rk3588_model(tmp_path)
    board = facts()
    board.model_dir_state, board.root_mode = "absent", mode
    session = BoardSession(Board(name="b", host="192.0.2.1"), SshSettings(sudo_password=password))
    plan = _root_check(session, board, "/opt/m", plan_deploy(model, "det", board, "b", keep=3, force=False))
    assert plan.prepare_root and session.root_mode == mode
    if refused_with is None:
        assert plan.action == "upload"
    else:
        assert plan.action == "refused" and refused_with in plan.problems[-1] and "--model-dir" in plan.problems[-1]
    board.model_dir_parent_writable = True          # the login user can make it: no root at all
    assert not plan_deploy(model, "det", board, "b", keep=3, force=False).prepare_root
