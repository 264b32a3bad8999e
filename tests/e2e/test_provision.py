"""`rkdeploy provision`, `rollback` and `server.*` on the lab fleet, with a bundle imported from an SDK tree."""
import hashlib
import json
import time

import pytest
import yaml

from tests.e2e.conftest import bundle_runtime, dead_link_seconds, inventory_copy, link_cut_once, own_lab, rkdeploy_in, ssh
from tests.lab import faults
from tests.wheels import offline_text

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab():
    """The four default boards, for this module alone: it installs the bundle on them."""
    with own_lab("pv") as lab:
        yield lab


def provision(bundles, inventory, *args):
    proc = rkdeploy_in(bundles, "provision", "--bundle", "2.3.2", "--json", "--inventory", str(inventory), *args)
    return proc, json.loads(proc.stdout)


def check(bundles, inventory, *args):
    proc = rkdeploy_in(bundles, "check", "--bundle", "2.3.2", "--json", "--inventory", str(inventory), *args)
    return proc, {b["board"]: b for b in json.loads(proc.stdout)["boards"]}


def board(lab, profile):
    return next(b for b in lab.boards() if b.profile == profile)


def runtime_sha(lab, b):
    return lab.board_root_exec(b, "sha256sum < /usr/lib/librknnrt.so").stdout.decode().split()[0]


def test_provision_brings_every_board_to_the_bundle_and_a_second_run_changes_and_sends_nothing(lab, bundles):
    proc, doc = provision(bundles, lab.inventory, "--all")
    assert proc.returncode == 0, doc
    first = {b["board"]: b for b in doc["boards"]}
    assert {b["status"] for b in first.values()} <= {"changed", "ok"}
    proc, boards = check(bundles, lab.inventory, "--all")
    assert proc.returncode == 0
    for entry in boards.values():
        facts = entry["facts"]
        assert facts["runtime"]["version"]["release"] == "2.3.2"
        assert facts["server"]["version"]["release"] == "2.3.2" and facts["server_running"]
        assert facts["lite2"]["release"] == "2.3.2"
    # lite2 really imports on the board (from the offline wheelhouse, with its real dependencies)
    out = ssh(lab, board(lab, "rk3588-fresh"), "python3 -c 'from rknnlite.api import RKNNLite; print(\"ok\")'", timeout=180)
    assert out.stdout.strip() == "ok", out.stderr

    proc, doc = provision(bundles, lab.inventory, "--all")
    assert proc.returncode == 0
    for entry in doc["boards"]:
        assert (entry["status"], entry["bytes_sent"], entry["remote_commands"]) == ("ok", 0, 1)


def test_rollback_brings_the_seed_board_back_to_1_5_0_and_provision_upgrades_it_again(lab, bundles):
    seed = board(lab, "rk3588-field")
    provision(bundles, lab.inventory, "--host", seed.name)
    proc = rkdeploy_in(bundles, "rollback", "--host", seed.name, "--inventory", str(lab.inventory))
    assert proc.returncode == 0, proc.stdout
    _, boards = check(bundles, lab.inventory, "--host", seed.name)
    facts = boards[seed.name]["facts"]
    assert facts["runtime"]["version"]["release"] == facts["server"]["version"]["release"] == "1.5.0"
    assert facts["server_running"]
    proc, doc = provision(bundles, lab.inventory, "--host", seed.name)
    assert doc["boards"][0]["status"] == "changed"
    assert check(bundles, lab.inventory, "--host", seed.name)[1][seed.name]["status"] == "ok"


def test_a_link_cut_during_the_runtime_upload_leaves_the_old_or_new_file_and_the_next_run_completes(lab, bundles, tmp_path):
    seed = board(lab, "rk3588-field")
    provision(bundles, lab.inventory, "--host", seed.name)
    assert rkdeploy_in(bundles, "rollback", "--host", seed.name, "--inventory", str(lab.inventory)).returncode == 0
    old = runtime_sha(lab, seed)
    inventory = inventory_copy(lab, tmp_path, connect_timeout=10)
    # the 67 kB stand-in runtime takes ~3 s at 200 kbit/s: cut once its upload file is on the board
    with link_cut_once(lab, seed, "200kbit", "ls -a /usr/lib /usr/bin", ".rkdeploy-",
                       "the runtime's upload file") as cut_at:
        proc, doc = provision(bundles, inventory, "--host", seed.name)
        finished = time.monotonic()
    assert cut_at, "the upload was never seen"
    assert doc["boards"][0]["status"] in ("unreachable", "failed") and finished - cut_at[0] < dead_link_seconds()
    assert runtime_sha(lab, seed) in (old, _bundle_runtime_sha(bundles))
    proc, doc = provision(bundles, lab.inventory, "--host", seed.name)
    assert doc["boards"][0]["status"] == "changed" and runtime_sha(lab, seed) == _bundle_runtime_sha(bundles)


def _bundle_runtime_sha(bundles):
    """The file that went into the bundle (not what bundle.import wrote about it, which is under test too)."""
    return hashlib.sha256(bundle_runtime().read_bytes()).hexdigest()


def test_a_full_filesystem_gives_a_clear_error_and_keeps_the_old_working_files(lab, bundles):
    seed = board(lab, "rk3588-field")
    provision(bundles, lab.inventory, "--host", seed.name)
    assert rkdeploy_in(bundles, "rollback", "--host", seed.name, "--inventory", str(lab.inventory)).returncode == 0
    old = runtime_sha(lab, seed)
    faults.fill_disk(lab, seed)
    try:
        proc, doc = provision(bundles, lab.inventory, "--host", seed.name)
        assert doc["boards"][0]["status"] == "failed" and "no space left" in doc["boards"][0]["error"]
        assert runtime_sha(lab, seed) == old
        leftovers = lab.board_root_exec(seed, "ls -a /usr/lib /usr/bin").stdout.decode()
        assert ".rkdeploy-" not in leftovers
    finally:
        faults.free_disk(lab, seed)
    proc, doc = provision(bundles, lab.inventory, "--host", seed.name)
    assert doc["boards"][0]["status"] == "changed"


def test_server_stop_start_restart_and_status_follow_the_boards_own_way_of_running_it(lab, bundles):
    b = board(lab, "rk3588-mismatch")
    inv = str(lab.inventory)
    assert rkdeploy_in(bundles, "server.stop", "--host", b.name, "--inventory", inv).returncode == 0
    status = json.loads(rkdeploy_in(bundles, "server.status", "--host", b.name, "--json", "--inventory", inv).stdout)
    assert status["boards"][0]["plan"]["running"] is False
    assert rkdeploy_in(bundles, "server.start", "--host", b.name, "--inventory", inv).returncode == 0
    status = json.loads(rkdeploy_in(bundles, "server.status", "--host", b.name, "--json", "--inventory", inv).stdout)
    assert status["boards"][0]["plan"]["running"] is True
    assert status["boards"][0]["plan"]["manager"] == "start_rknn.sh"
    before = status["boards"][0]["plan"]["pid"]
    restart = rkdeploy_in(bundles, "server.restart", "--host", b.name, "--json", "--inventory", inv)
    done = json.loads(restart.stdout)["boards"][0]
    assert restart.returncode == 0 and done["status"] == "changed", restart.stdout + restart.stderr
    assert done["plan"]["running"] is True and done["plan"]["pid"] not in (None, before)
    assert ssh(lab, b, "pgrep -x rknn_server").stdout.split() == [str(done["plan"]["pid"])]


def test_lite2_goes_into_the_virtualenv_the_inventory_names_and_the_system_python_is_left_alone(lab, bundles, tmp_path):
    b = board(lab, "rk3568-fresh")
    made = ssh(lab, b, "python3 -m venv /home/rock/venv && /home/rock/venv/bin/python -m pip --version", timeout=600)
    assert made.returncode == 0, made.stderr
    doc = yaml.safe_load(lab.inventory.read_text())
    doc["boards"][b.name]["python"] = "/home/rock/venv/bin/python"
    inventory = tmp_path / "venv-inventory.yaml"
    inventory.write_text(yaml.safe_dump(doc))
    system_lite2 = ssh(lab, b, "python3 -c 'import rknnlite' 2>&1 && echo present || echo absent").stdout.split()[-1]

    proc, doc = provision(bundles, inventory, "--host", b.name)
    assert proc.returncode == 0 and doc["boards"][0]["status"] in ("changed", "ok"), doc
    out = ssh(lab, b, "/home/rock/venv/bin/python -c 'from rknnlite.api import RKNNLite; import rknnlite; "
                      "print(rknnlite.__file__)'", timeout=180)
    assert out.returncode == 0 and out.stdout.startswith("/home/rock/venv/lib/"), out.stderr
    assert ssh(lab, b, "python3 -c 'import rknnlite' 2>&1 && echo present || echo absent").stdout.split()[-1] == system_lite2
    _, boards = check(bundles, inventory, "--host", b.name)
    assert boards[b.name]["facts"]["lite2"]["release"] == "2.3.2"
    proc, doc = provision(bundles, inventory, "--host", b.name)
    assert (doc["boards"][0]["status"], doc["boards"][0]["bytes_sent"]) == ("ok", 0)


def test_bundle_import_takes_the_python_tags_from_the_fleet_and_names_the_boards_it_could_not_read(lab, tmp_path):
    from tests.lab.sdk import cached_tree

    cut = board(lab, "rk3568-fresh")
    inventory = inventory_copy(lab, tmp_path, connect_timeout=5)
    faults.cut_link(cut)
    try:
        proc = rkdeploy_in(tmp_path, "bundle.import", str(cached_tree("2.3.2")), "--python", "fleet",
                           "--inventory", str(inventory), "--pip-options", offline_text())
    finally:
        faults.restore_link(cut)
    assert proc.returncode == 0, proc.stderr
    assert "fleet Python: cp311" in proc.stderr and f"{cut.name} (unreachable" in proc.stderr
    assert "lite2 for cp311" in proc.stdout
    assert list((tmp_path / "bundles/2.3.2/wheelhouse").iterdir()) == [tmp_path / "bundles/2.3.2/wheelhouse/cp311"]
