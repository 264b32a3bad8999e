"""Rockchip's real SDK trees on fresh lab boards: the real rknn_server and lite2 wheels of 1.6.0 and 2.3.2
(with the lab's labelled stand-in aarch64 runtime, which Rockchip's trees of those releases lack), and one of
Rockchip's own RK3566_RK3568 example models rolled out to an rk3568 board."""
import json

import pytest

from tests import rockchip_files
from tests.e2e.conftest import need_lab, own_lab, rkdeploy_in, ssh
from tests.lab import sdk
from rkdeploy.bundle import sha256_of as sha256_file
from tests.wheels import offline_text

pytestmark = pytest.mark.lab

RELEASES = {"box1": "1.6.0", "box2": "2.3.2", "box3": "2.3.2"}     # box4: the rk3568-sdk140 profile
DEPLOY_BOARD = "box5"         # an rk3568 of its own for the deploy test, which provisions it (in any order)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """Fresh boards of their own (rk3588, rk3588, rk3568; an rk3568 on Rockchip's 1.4.0 files; an rk3568 for the
    deploy test) and a work dir with bundles 1.6.0 and 2.3.2 imported from Rockchip's trees."""
    need_lab()
    trees = {v: rockchip_files.need(rockchip_files.sdk_tree(f"rknn-toolkit2-v{v}")) for v in ("1.6.0", "2.3.2")}
    work = tmp_path_factory.mktemp("real-sdk")
    for version, tree in trees.items():
        proc = rkdeploy_in(work, "bundle.import", str(tree), "--python", "3.11",
                           "--runtime", f"aarch64={sdk.standin_runtime(version)}", "--pip-options", offline_text())
        assert proc.returncode == 0, proc.stdout + proc.stderr
    with own_lab("rs", profiles=["rk3588-fresh", "rk3588-fresh", "rk3568-fresh", "rk3568-sdk140",
                                      "rk3568-fresh"]) as lab:
        yield lab, work, trees


def check(work, lab, host):
    proc = rkdeploy_in(work, "check", "--host", host, "--json", "--inventory", str(lab.inventory))
    return {b["board"]: b for b in json.loads(proc.stdout)["boards"]}[host]


def test_provision_from_rockchips_trees_installs_the_real_server_and_lite2_and_a_second_run_sends_nothing(fresh):
    lab, work, trees = fresh
    for host, version in RELEASES.items():
        proc = rkdeploy_in(work, "provision", "--host", host, "--bundle", version, "--json", "--inventory", str(lab.inventory))
        doc = json.loads(proc.stdout)
        assert proc.returncode == 0 and doc["boards"][0]["status"] == "changed", proc.stdout + proc.stderr
    for host, version in RELEASES.items():
        entry = check(work, lab, host)
        facts = entry["facts"]
        assert facts["server"]["version"]["release"] == facts["runtime"]["version"]["release"] == version
        assert facts["lite2"]["release"] == version and facts["server_running"], entry
        # the server on the board is Rockchip's own file, byte for byte
        real = sdk.real_server(version)
        assert facts["server"]["sha256"] == sha256_file(real)
        board = lab.board(host)
        out = ssh(lab, board, "python3 -c 'from rknnlite.api import RKNNLite; print(\"ok\")'", timeout=240)
        assert out.stdout.strip() == "ok", out.stderr
        banner = lab.board_root_exec(board, "cat /var/log/rknn_server.log 2>/dev/null; pgrep -x rknn_server").stdout.decode()
        assert banner.strip(), f"rknn_server is not running on {host}"
    for host, version in RELEASES.items():
        proc = rkdeploy_in(work, "provision", "--host", host, "--bundle", version, "--json", "--inventory", str(lab.inventory))
        entry = json.loads(proc.stdout)["boards"][0]
        assert (proc.returncode, entry["status"], entry["bytes_sent"]) == (0, "ok", 0)


def test_rockchips_rk3566_model_deploys_to_an_rk3568_board(fresh):
    lab, work, _ = fresh
    model = rockchip_files.example_model("rknn-toolkit2-77b71094-RK3566_RK3568-multiple_input_demo.rknn")
    proc = rkdeploy_in(work, "provision", "--host", DEPLOY_BOARD, "--bundle", "2.3.2", "--inventory", str(lab.inventory))
    assert proc.returncode == 0, proc.stdout
    proc = rkdeploy_in(work, "deploy", str(model), "--host", DEPLOY_BOARD, "--name", "demo", "--json",
                       "--inventory", str(lab.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["boards"][0]["status"] == "changed"
    on_board = ssh(lab, lab.board(DEPLOY_BOARD), "sha256sum /opt/rkdeploy/models/demo/current.rknn")
    assert on_board.stdout.split()[0] == sha256_file(model)


def test_a_board_on_rockchips_1_4_0_files_reads_as_1_4_0_and_check_says_strings_is_missing(fresh):
    lab, work, _ = fresh
    runtime = rockchip_files.need(sdk.real_runtime("1.4.0", soc="rk3568"), "librknnrt.so 1.4.0 (RK356X)")
    entry = check(work, lab, "box4")
    facts = entry["facts"]
    assert facts["runtime"]["sha256"] == sha256_file(runtime)                # Rockchip's file, not a stand-in
    assert facts["server"]["sha256"] == sha256_file(sdk.real_server("1.4.0", soc="rk3568"))
    assert facts["runtime"]["version"]["raw"] == "librknnrt version: 1.4.0 (a10f100eb@2022-09-09T09:07:14)"
    assert facts["server"]["version"]["release"] == "1.4.0" and facts["server_running"]
    assert facts["strings"] is False
    finding = next(f for f in entry["findings"] if f["component"] == "server" and "strings" in f["message"])
    assert "binutils" in finding["fix"]
