"""`rkdeploy deploy` and `models.*` against the lab fleet: validation, atomic push, versions, locks, cut links."""
import json
import socket
import time

import pytest

from tests.lab import modelgen
from tests.e2e.conftest import dead_link_seconds, deploys_at_once, inventory_copy, link_cut_once, rkdeploy, ssh
from tests.lab import faults

pytestmark = pytest.mark.lab
# Generated models (tests/lab/modelgen.py): what matters here is their SoC, building toolkit, format and size.
TK231 = modelgen.cached(soc="rk3588", toolkit="2.3.1-source_code", format=6, size_kb=2700)
TK134 = modelgen.cached(soc="rk3588", toolkit="1.3.4-source_code", format=2)


def deploy(lab, model, *args, inventory=None):
    proc = rkdeploy("deploy", str(model), "--json", "--inventory", str(inventory or lab.inventory), *args)
    return proc, json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None


def board(lab, profile):
    return next(b for b in lab.boards() if b.profile == profile)


def current_sha(lab, b, name):
    out = ssh(lab, b, f"sha256sum < /opt/rkdeploy/models/{name}/current.rknn 2>/dev/null | cut -d ' ' -f 1")
    return out.stdout.strip()


def sha(path):
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_text_file_named_rknn_is_refused_before_any_connection(tmp_path):
    fake = tmp_path / "model.rknn"
    fake.write_text("not a model\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        inventory = tmp_path / "inv.yaml"
        inventory.write_text(f"boards:\n  b:\n    host: 127.0.0.1\n    port: {listener.getsockname()[1]}\n")
        proc = rkdeploy("deploy", str(fake), "--all", "--inventory", str(inventory))
        with pytest.raises(socket.timeout):
            listener.accept()
    assert proc.returncode == 1 and "not an RKNN model" in proc.stderr


def test_an_rk3588_model_goes_to_the_rk3588_board_and_is_refused_on_the_rk3568_and_the_old_runtime(lab):
    proc, doc = deploy(lab, TK231, "--all", "--name", "valid")
    by = {b["board"]: b for b in doc["boards"]}
    new, old, rk3568 = board(lab, "rk3588-mismatch"), board(lab, "rk3588-field"), board(lab, "rk3568-fresh")
    assert by[new.name]["status"] == "changed" and by[new.name]["bytes_sent"] == TK231.stat().st_size
    assert current_sha(lab, new, "valid") == sha(TK231)
    assert by[rk3568.name]["status"] == "failed" and "built for rk3588, rk3588s but the board is rk3568" in by[rk3568.name]["error"]
    assert by[old.name]["status"] == "failed" and "Invalid RKNN model version 6" in by[old.name]["error"]
    assert "inv provision --bundle 2.3.1" in by[old.name]["error"]
    assert current_sha(lab, old, "valid") == "" and proc.returncode == 8


def test_redeploying_sends_nothing_a_new_version_keeps_the_old_and_rollback_restores_it(lab):
    b = board(lab, "rk3588-mismatch")
    first, _ = deploy(lab, TK231, "--host", b.name, "--name", "versions")
    assert first.returncode == 0
    again, doc = deploy(lab, TK231, "--host", b.name, "--name", "versions")
    assert again.returncode == 0 and doc["boards"][0]["status"] == "ok" and doc["boards"][0]["bytes_sent"] == 0
    assert doc["boards"][0]["remote_commands"] == 1          # the light probe only, no lock
    newer, doc = deploy(lab, TK134, "--host", b.name, "--name", "versions")
    assert doc["boards"][0]["status"] == "changed" and current_sha(lab, b, "versions") == sha(TK134)
    listing = json.loads(rkdeploy("models.list", "--host", b.name, "--json", "--inventory", str(lab.inventory)).stdout)
    assert listing["task"] == "models.list" and listing["exit_code"] == 0
    model = next(m for m in listing["boards"][0]["models"] if m["name"] == "versions")
    assert [v["sha256"] for v in model["versions"]] == [sha(TK231), sha(TK134)]
    rolled = rkdeploy("models.rollback", "versions", "--host", b.name, "--inventory", str(lab.inventory))
    assert rolled.returncode == 0 and current_sha(lab, b, "versions") == sha(TK231)
    assert rkdeploy("models.remove", "versions", "--host", b.name, "--inventory", str(lab.inventory)).returncode == 0
    assert ssh(lab, b, "test -e /opt/rkdeploy/models/versions && echo there || echo gone").stdout.strip() == "gone"


def test_a_link_cut_mid_upload_leaves_the_active_model_and_is_reported_once_the_link_is_seen_dead(lab, tmp_path):
    b = board(lab, "rk3588-mismatch")
    assert deploy(lab, TK134, "--host", b.name, "--name", "cut")[0].returncode == 0
    inventory = inventory_copy(lab, tmp_path, connect_timeout=10)
    # 2.7 MB at 1 Mbit/s: ~22 s, plenty of time to cut once the upload's part file is on the board
    with link_cut_once(lab, b, "1mbit", "ls -A /opt/rkdeploy/models/cut/versions", ".part-",
                       "the upload's part file") as cut_at:
        proc, doc = deploy(lab, TK231, "--host", b.name, "--name", "cut", inventory=inventory)
        finished = time.monotonic()
    assert cut_at, "the upload was never seen"
    assert doc["boards"][0]["status"] == "unreachable", doc
    assert finished - cut_at[0] < dead_link_seconds()
    assert current_sha(lab, b, "cut") == sha(TK134)
    proc, doc = deploy(lab, TK231, "--host", b.name, "--name", "cut")
    assert doc["boards"][0]["status"] == "changed" and current_sha(lab, b, "cut") == sha(TK231)
    leftovers = ssh(lab, b, "ls -A /opt/rkdeploy/models/cut/versions").stdout.split()
    assert not [f for f in leftovers if ".part-" in f]


def test_two_concurrent_deploys_to_one_board_take_turns_and_leave_no_mixed_file(lab):
    b = board(lab, "rk3588-mismatch")
    results = deploys_at_once(lab.inventory, b.name, (TK231, TK134), "race")
    assert [r["status"] for r in results] == ["changed", "changed"], [r.get("error") for r in results]
    active = current_sha(lab, b, "race")
    assert active in (sha(TK231), sha(TK134))
    files = ssh(lab, b, "cd /opt/rkdeploy/models/race/versions && for f in *.rknn; do sha256sum < $f | "
                        "cut -c1-12; echo $f; done").stdout.split()
    pairs = list(zip(files[::2], files[1::2]))
    assert len(pairs) == 2 and all(f == f"{h}.rknn" for h, f in pairs)


def test_a_board_whose_disk_fills_during_a_forced_deploy_keeps_its_active_model_and_no_partial_file(lab):
    b = board(lab, "rk3588-mismatch")
    assert deploy(lab, TK134, "--host", b.name, "--name", "full")[0].returncode == 0
    faults.fill_disk(lab, b)
    try:
        refused, doc = deploy(lab, TK231, "--host", b.name, "--name", "full")
        assert doc["boards"][0]["status"] == "failed" and "not enough space" in doc["boards"][0]["error"]
        forced, doc = deploy(lab, TK231, "--host", b.name, "--name", "full", "--force")
        leftovers = ssh(lab, b, "ls -A /opt/rkdeploy/models/full/versions").stdout.split()
    finally:
        faults.free_disk(lab, b)
    assert forced.returncode == 8 and doc["boards"][0]["status"] == "failed"
    assert "no space left on the board" in doc["boards"][0]["error"], doc
    assert current_sha(lab, b, "full") == sha(TK134)
    assert sorted(leftovers) == [f"{sha(TK134)[:12]}.json", f"{sha(TK134)[:12]}.rknn"]


def test_on_a_full_disk_the_lock_is_still_taken_so_a_rollback_and_a_remove_can_run(lab):
    """A full disk is when a user rolls back or removes models; the lock's holder must not need a data block."""
    b = board(lab, "rk3588-mismatch")
    for model in (TK134, TK231):
        assert deploy(lab, model, "--host", b.name, "--name", "fullrb")[0].returncode == 0
    assert deploy(lab, TK134, "--host", b.name, "--name", "fullrm")[0].returncode == 0
    faults.fill_disk(lab, b)
    try:
        rolled = rkdeploy("models.rollback", "fullrb", "--host", b.name, "--inventory", str(lab.inventory))
        removed = rkdeploy("models.remove", "fullrm", "--host", b.name, "--inventory", str(lab.inventory))
    finally:
        faults.free_disk(lab, b)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert current_sha(lab, b, "fullrb") == sha(TK134)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert ssh(lab, b, "test -e /opt/rkdeploy/models/fullrm && echo there || echo gone").stdout.strip() == "gone"
