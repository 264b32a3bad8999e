"""An RV1106 camera board (profile rv1106-luckfox: busybox ash, dropbear, root login without sudo, no Python,
32-bit ARM, uClibc, /oem/usr) from fresh to provisioned from Rockchip's own 1.6.0 tree (its armhf-uclibc mini
runtime librknnmrt.so and rknn_server, installed under /oem/usr byte for byte) to a deployed rv1106 model
(format 4100), listed and rolled back, with the same commands as the Debian boards.

Real: busybox's applets and dropbear (Debian's armhf builds), Rockchip's librknnmrt.so and rknn_server files
and their version strings. Stand-ins (labelled): the uClibc loader (Debian has no uClibc) and the process
that runs in place of Rockchip's uClibc rknn_server, the NPU, its driver file and device node."""
import json

import pytest

from rkdeploy.bundle import sha256_of
from rkdeploy.lock import HEARTBEAT_TIMEOUT
from tests import rockchip_files
from tests.e2e.conftest import deploys_at_once, need_lab, own_lab, rkdeploy_in, wait_until
from tests.lab import modelgen

pytestmark = pytest.mark.lab

TREE = "rknn-toolkit2-v1.6.0"
UCLIBC = "rknpu2/runtime/Linux/{what}/armhf-uclibc"
MRT_160 = "librknnmrt version: 1.6.0 (9a7b5d24c@2023-12-13T17:33:10)"
SERVER_160 = "rknn_server version: 1.6.0 (535b468 build@2023-12-11T17:05:28)"


@pytest.fixture(scope="module")
def rv(tmp_path_factory):
    """Three RV1106 boards of their own, so that the tests hold in any order: box1 for the provision test, box2
    never changed (the fresh-board test), box3 for the deploy tests (provisioned by them); and a work dir with
    bundle 1.6.0 imported from Rockchip's tree."""
    need_lab()
    tree = rockchip_files.need(rockchip_files.sdk_tree(TREE))
    rockchip_files.need(tree / UCLIBC.format(what="librknn_api") / "librknnmrt.so", "armhf-uclibc librknnmrt.so 1.6.0")
    work = tmp_path_factory.mktemp("rv1106")
    proc = rkdeploy_in(work, "bundle.import", str(tree), "--python", "3.11")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with own_lab("v", profiles=["rv1106-luckfox"] * 3, timeout=180) as lab:
        yield lab, work, tree


def run(work, lab, *args, timeout=600):
    proc = rkdeploy_in(work, *args, "--inventory", str(lab.inventory), timeout=timeout)
    try:
        return proc, json.loads(proc.stdout) if "--json" in args else None
    except ValueError:
        raise AssertionError(proc.stdout + proc.stderr) from None


DEPLOY_BOARD = "box3"


def provisioned(work, lab) -> None:
    """The deploy tests' board with bundle 1.6.0 (a deploy needs its runtime there): installed once, then nothing."""
    proc, doc = run(work, lab, "provision", "--host", DEPLOY_BOARD, "--bundle", "1.6.0", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def check(work, lab, host="box1"):
    proc, doc = run(work, lab, "check", "--host", host, "--json")
    return doc["boards"][0]


def lock_dirs_gone(lab, board) -> None:
    """The holders let go once their runs close the channel (a run does not wait for that): poll, within the
    heartbeat timeout."""
    def gone():
        left = lab.board_root_exec(board, "ls -a /root/.cache/rkdeploy/lock").stdout.decode()
        return "board.d" not in left and "activate.d" not in left
    wait_until(gone, HEARTBEAT_TIMEOUT, "the directory lock let go")


def test_a_fresh_rv1106_board_reads_as_a_uclibc_armhf_board_without_python_and_with_no_lite2_finding(rv):
    lab, work, _ = rv
    entry = check(work, lab, "box2")
    facts = entry["facts"]
    assert (facts["arch"], facts["soc"], facts["libc"], facts["root_mode"]) == ("armv7l", "rv1106", "uclibc", "root")
    assert facts["python"] == "" and facts["lite2"] is None and facts["model"] == "Luckfox Pico Max"
    assert facts["npu_driver"]["release"] == "0.9.2" and facts["strings"] is True     # busybox's strings applet
    components = {f["component"] for f in entry["findings"]}
    assert "lite2" not in components and "sudo" not in components
    assert {"runtime", "server"} <= components


def test_provision_installs_rockchips_mini_runtime_and_server_under_oem_and_a_second_run_sends_nothing(rv):
    lab, work, tree = rv
    proc, doc = run(work, lab, "provision", "--host", "box1", "--bundle", "1.6.0", "--check", "--json")
    plan = doc["boards"][0]["data"] if "data" in doc["boards"][0] else doc["boards"][0]["plan"]
    assert plan["arch"] == "armhf-uclibc" and plan["server_dir"] == "/oem/usr/bin", plan
    assert not [s for s in plan["steps"] if s["kind"] in ("lite2", "pip")]
    assert any("no Python on this board" in n for n in plan["notes"]), plan["notes"]
    assert {s["what"].split()[0] for s in plan["steps"] if s["kind"] == "file"} == {
        "/oem/usr/lib/librknnmrt.so", "/oem/usr/bin/rknn_server", "/oem/usr/bin/start_rknn.sh",
        "/oem/usr/bin/restart_rknn.sh"}
    proc, doc = run(work, lab, "provision", "--host", "box1", "--bundle", "1.6.0", "--json")
    assert proc.returncode == 0 and doc["boards"][0]["status"] == "changed", proc.stdout + proc.stderr
    facts = check(work, lab)["facts"]
    runtime, server = facts["runtime"], facts["server"]
    assert runtime["path"] == "/oem/usr/lib/librknnmrt.so" and runtime["version"]["raw"] == MRT_160
    assert server["path"] == "/oem/usr/bin/rknn_server" and server["version"]["raw"] == SERVER_160
    # Rockchip's own files, byte for byte
    assert runtime["sha256"] == sha256_of(tree / UCLIBC.format(what="librknn_api") / "librknnmrt.so")
    assert server["sha256"] == sha256_of(tree / UCLIBC.format(what="rknn_server") / "usr/bin/rknn_server")
    assert facts["server_running"] and facts["server_manager"] == "start_rknn.sh"
    banner = lab.board_root_exec(lab.board("box1"), "ps; cat /proc/$(pidof rknn_server)/cmdline").stdout.decode()
    assert "rknn_server" in banner
    proc, doc = run(work, lab, "provision", "--host", "box1", "--bundle", "1.6.0", "--json")
    entry = doc["boards"][0]
    assert (proc.returncode, entry["status"], entry["bytes_sent"]) == (0, "ok", 0)


def test_an_rv1106_model_of_format_4100_deploys_lists_and_rolls_back_on_busybox(rv, tmp_path):
    lab, work, _ = rv
    provisioned(work, lab)
    first = modelgen.write(tmp_path / "det.rknn", soc="rv1106", format=4100, toolkit="1.6.0", seed=1)
    second = modelgen.write(tmp_path / "det2.rknn", soc="rv1103", format=4100, toolkit="1.6.0", seed=2)
    for model in (first, second):
        proc, doc = run(work, lab, "deploy", str(model), "--host", DEPLOY_BOARD, "--name", "det", "--json")
        assert proc.returncode == 0 and doc["boards"][0]["status"] == "changed", proc.stdout + proc.stderr
    proc, doc = run(work, lab, "models.list", "--host", DEPLOY_BOARD, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = json.dumps(doc["boards"][0])
    assert sha256_of(second)[:12] in listed and sha256_of(first)[:12] in listed
    on_board = lab.board_root_exec(lab.board(DEPLOY_BOARD), "sha256sum /opt/rkdeploy/models/det/current.rknn").stdout
    assert on_board.split()[0].decode() == sha256_of(second)
    proc, doc = run(work, lab, "models.rollback", "det", "--host", DEPLOY_BOARD, "--json")
    assert proc.returncode == 0 and doc["boards"][0]["status"] == "changed", proc.stdout + proc.stderr
    on_board = lab.board_root_exec(lab.board(DEPLOY_BOARD), "sha256sum /opt/rkdeploy/models/det/current.rknn").stdout
    assert on_board.split()[0].decode() == sha256_of(first)
    # the board has no util-linux flock: the directory lock was used and let go
    assert lab.board_root_exec(lab.board(DEPLOY_BOARD), "command -v flock || true").stdout == b""
    lock_dirs_gone(lab, lab.board(DEPLOY_BOARD))


def test_two_deploys_at_once_on_the_busybox_board_both_land_whole_and_leave_no_lock_directory(rv, tmp_path):
    """Two takers of the directory lock (board.d) at the same moment: neither may fail as busy or lost, both
    activate, every kept file is whole, and once the holders have let go no lock directory is left."""
    lab, work, _ = rv
    provisioned(work, lab)
    models = [modelgen.write(tmp_path / f"r{i}.rknn", soc="rv1106", format=4100, toolkit="1.6.0", seed=10 + i)
              for i in range(2)]
    results = deploys_at_once(lab.inventory, DEPLOY_BOARD, models, "race", cwd=work)
    assert [r["status"] for r in results] == ["changed", "changed"], [r.get("error") for r in results]
    board = lab.board(DEPLOY_BOARD)
    listing = lab.board_root_exec(board, "cd /opt/rkdeploy/models/race/versions && sha256sum *.rknn").stdout.decode()
    kept = {line.split()[1]: line.split()[0] for line in listing.splitlines()}
    assert kept == {f"{sha256_of(m)[:12]}.rknn": sha256_of(m) for m in models}, listing
    lock_dirs_gone(lab, board)



def test_a_model_for_another_npu_is_refused_on_the_rv1106_board(rv, tmp_path):
    lab, work, _ = rv
    provisioned(work, lab)
    model = modelgen.write(tmp_path / "big.rknn", soc="rk3588", format=6, toolkit="1.6.0")
    proc, doc = run(work, lab, "deploy", str(model), "--host", DEPLOY_BOARD, "--name", "big", "--json")
    assert proc.returncode == 8 and "but the board is rv1106" in doc["boards"][0]["error"]


def test_a_glibc_runtime_is_refused_as_armhf_uclibc_at_import(rv, tmp_path):
    _, _, tree = rv
    glibc = tree / "rknpu2/runtime/Linux/librknn_api/armhf/librknnrt.so"
    proc = rkdeploy_in(tmp_path, "bundle.import", str(tree), "--python", "3.11", "--runtime", f"armhf-uclibc={glibc}")
    assert proc.returncode == 1
    assert "a glibc build" in proc.stdout + proc.stderr and "armhf-uclibc files must be uclibc builds" in proc.stdout + proc.stderr
