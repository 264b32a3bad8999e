"""`rkdeploy check` against the lab fleet over real SSH, as a user runs it."""
import json
import subprocess
import time

import pytest

from tests.e2e.conftest import RKDEPLOY, inventory_copy, on_a_terminal, own_lab, rkdeploy
from tests.lab import faults
from tests.lab.fleet import load_profile

pytestmark = pytest.mark.lab


def check_json(inventory, *extra):
    proc = rkdeploy("check", "--all", "--json", "--inventory", str(inventory), *extra)
    return proc, json.loads(proc.stdout)


def test_check_json_reports_exactly_what_the_lab_installed_in_one_remote_command_per_board(lab):
    proc, doc = check_json(lab.inventory)
    by_name = {b["board"]: b for b in doc["boards"]}
    for board in lab.boards():
        profile = load_profile(board.profile)
        entry = by_name[board.name]
        facts = entry["facts"]
        assert entry["remote_commands"] == 1
        assert facts["arch"] == "aarch64" and facts["soc"] == profile["soc"]
        assert facts["model"] == profile["model"]                # read from the device tree, NUL and all
        assert facts["npu_driver"]["release"] == profile["npu_driver"]
        installed = profile["installed"]
        runtime = facts["runtime"]["version"]["release"] if facts["runtime"] else None
        server = facts["server"]["version"]["release"] if facts["server"] else None
        assert (runtime, server) == (installed.get("runtime"), installed.get("server"))
        assert facts["server_running"] == bool(profile.get("server_running"))
    assert by_name["box2"]["status"] == "ok"                      # the field board: 1.5.0 throughout
    assert by_name["box3"]["status"] == "mismatch"                # server 1.6.0, runtime 2.3.2
    assert any("1.6.0" in f["message"] and "2.3.2" in f["message"] for f in by_name["box3"]["findings"])
    assert proc.returncode == 2                                    # mismatches, nothing unreachable


def test_the_table_shows_the_seed_board_and_the_disagreement(lab):
    proc = rkdeploy("check", "--all", "--inventory", str(lab.inventory))
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("│ box")}
    assert rows["box2"].count("1.5.0") == 2 and "ok" in rows["box2"]
    assert "server 1.6.0 ≠ runtime 2.3.2" in rows["box3"]
    assert "rk3568" in rows["box4"]
    assert "Recap: ok=1  mismatch=3  unreachable=0" in proc.stdout


def test_a_cut_board_is_unreachable_within_the_connect_timeout_while_the_others_are_checked(lab, tmp_path):
    inventory = inventory_copy(lab, tmp_path, connect_timeout=5)
    cut = lab.boards()[1]
    faults.cut_link(cut)
    try:
        started = time.monotonic()
        proc, doc = check_json(inventory)
        elapsed = time.monotonic() - started
    finally:
        faults.restore_link(cut)
    statuses = {b["board"]: b for b in doc["boards"]}
    assert statuses[cut.name]["status"] == "unreachable"
    assert statuses[cut.name]["seconds"] <= 5 + 1.0
    assert all(b["status"] in ("ok", "mismatch") for n, b in statuses.items() if n != cut.name)
    assert proc.returncode == 2 | 4
    assert elapsed < 60


def test_unknown_host_keys_are_refused_accepted_once_on_request_and_changed_ones_refused(lab, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    inventory = inventory_copy(lab, tmp_path, known_hosts=str(known))
    proc = rkdeploy("check", "--host", "box1", "--inventory", str(inventory))
    assert proc.returncode & 8 and "unknown host key" in proc.stdout and "--accept-new-host-keys" in proc.stdout
    assert known.read_text() == ""

    proc = rkdeploy("check", "--host", "box1", "--inventory", str(inventory), "--accept-new-host-keys")
    assert not proc.returncode & 8, proc.stdout
    assert len(known.read_text().splitlines()) == 1
    proc = rkdeploy("check", "--host", "box1", "--inventory", str(inventory))
    assert not proc.returncode & 8
    assert len(known.read_text().splitlines()) == 1

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    ip = known.read_text().split()[0]
    known.write_text(f"{ip} {' '.join(other.with_suffix('.pub').read_text().split()[:2])}\n")
    proc = rkdeploy("check", "--host", "box1", "--inventory", str(inventory), "--accept-new-host-keys")
    assert proc.returncode & 8 and "CHANGED" in proc.stdout and "ssh-keygen -R" in proc.stdout


def test_a_malformed_inventory_is_one_line_on_stderr_with_exit_code_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("boards:\n  a:\n    host: x\n    hots: y\n")
    proc = rkdeploy("check", "--all", "--inventory", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"rkdeploy: {bad}:4: unknown key 'hots' in board 'a' (did you mean host, port?) " \
                                  "(allowed: adb, groups, host, key, port, python, soc, user, vars)"


def test_the_pc_toolkit_version_is_read_from_its_own_python_and_judged_against_each_board(lab, toolkit_python):
    import os

    env = dict(os.environ, RKDEPLOY_TOOLKIT_PYTHON=toolkit_python)
    proc = subprocess.run([os.path.join(os.path.dirname(__import__("sys").executable), "rkdeploy"), "check",
                           "--host", "box2,box3", "--json", "--inventory", str(lab.inventory)],
                          capture_output=True, text=True, env=env, timeout=300)
    doc = json.loads(proc.stdout)
    assert doc["toolkit"]["version"] == "2.3.2" and doc["target"]["toolkit"] == "2.3.2"
    box2 = next(b for b in doc["boards"] if b["board"] == "box2")
    toolkit = [f for f in box2["findings"] if f["component"] == "toolkit"]
    assert toolkit and "2.3.2" in toolkit[0]["message"] and "1.5.0" in toolkit[0]["message"]
    box3 = next(b for b in doc["boards"] if b["board"] == "box3")
    assert any(f["component"] == "toolkit" and "1.6.0" in f["message"] for f in box3["findings"])


def test_a_sudo_password_is_asked_once_used_for_root_facts_and_never_shown():
    with own_lab("ps", profiles=["rk3588-sudo-password"]) as lab:
        plain = rkdeploy("check", "--all", "--json", "--inventory", str(lab.inventory))
        facts = json.loads(plain.stdout)["boards"][0]["facts"]
        assert facts["sudo"] == "no" and facts["npu_driver"] is None
        assert any("--prompt-for-sudo-password" in f["fix"] for f in json.loads(plain.stdout)["boards"][0]["findings"])
        code, transcript = on_a_terminal([RKDEPLOY, "check", "--all", "--json", "--prompt-for-sudo-password",
                                          "--inventory", str(lab.inventory)], "rocklab", timeout=300)
        assert transcript.count("sudo password for the boards:") == 1
        doc = json.loads(transcript[transcript.index("{"):transcript.rindex("}") + 1])
        facts = doc["boards"][0]["facts"]
        assert facts["sudo"] == "ok" and facts["npu_driver"]["release"] == "0.9.7" and code == doc["exit_code"]
        assert "rocklab" not in transcript


def test_ssh_config_aliases_and_proxyjump_work_and_an_unknown_jump_host_key_is_refused(lab, tmp_path):
    jump, inner, aliased = lab.boards()[:3]
    config = tmp_path / "ssh_config"
    config.write_text("".join(f"Host {alias}\n  HostName {b.ip}\n  User rock\n  IdentityFile {lab.key}\n"
                              for alias, b in (("jumpbox", jump), ("inner", inner), ("aliased", aliased)))
                      + "Host inner\n  ProxyJump jumpbox\n")
    known = tmp_path / "known_hosts"

    def check(known_lines):
        known.write_text("".join(known_lines))
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(f"settings:\n  known_hosts: {known}\n  ssh_config: {config}\n"
                             "boards:\n  by-alias:\n    host: aliased\n  by-jump:\n    host: inner\n")
        return {b["board"]: b for b in check_json(inventory)[1]["boards"]}

    every = lab.known_hosts.read_text().splitlines(keepends=True)
    by = check(every)
    assert by["by-alias"]["facts"]["hostname"] == aliased.name and by["by-jump"]["facts"]["hostname"] == inner.name
    by = check([line for line in every if not line.startswith(f"{jump.ip} ")])      # the jump host unknown
    assert by["by-jump"]["status"] == "failed" and f"unknown host key for {jump.ip}" in by["by-jump"]["error"]
    assert by["by-alias"]["status"] != "failed"
