"""`rkdeploy perf` end to end on the lab: preflight over SSH, the worker in the toolkit's own Python
(a labelled stand-in of rknn-toolkit2 2.x here), parsing, report; and the real toolkit when configured."""
import json
from pathlib import Path
import os
import subprocess

import pytest

from rkdeploy.perf import run_worker
from tests.lab import modelgen
from tests.e2e.conftest import RKDEPLOY, own_lab, rkdeploy_in

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab():
    """The four default boards, for this module alone: it provisions one of them."""
    with own_lab("pf") as lab:
        yield lab
MODEL = modelgen.cached(soc="rk3588", toolkit="2.3.1-source_code", format=6)   # perf needs its SoC and toolkit


def board(lab, profile):
    return next(b for b in lab.boards() if b.profile == profile)


def perf(bundles, lab, toolkit, devices, *args):
    # The stand-in's adb knows only the listed ids: no namespaced relay (127.0.0.1:7555) to reach, so one
    # toolkit run at a time on the PC, the way USB boards are run.
    env = dict(os.environ, RKDEPLOY_TOOLKIT_PYTHON=toolkit, RKDEPLOY_STANDIN_ADB_DEVICES=devices,
               RKDEPLOY_PERF_ISOLATION="lock")
    proc = subprocess.run([RKDEPLOY, "perf", "--model", str(MODEL), "--json", "--inventory", str(lab.inventory), *args],
                          cwd=bundles, capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    return proc, json.loads(proc.stdout)


def test_perf_runs_on_a_provisioned_board_and_refuses_the_mismatched_one_with_its_reason(lab, bundles, standin_toolkit):
    fresh, mismatch = board(lab, "rk3588-fresh"), board(lab, "rk3588-mismatch")
    assert rkdeploy_in(bundles, "provision", "--bundle", "2.3.2", "--host", fresh.name,
                       "--inventory", str(lab.inventory)).returncode == 0
    devices = f"{fresh.ip}:5555,{mismatch.ip}:5555"
    proc, doc = perf(bundles, lab, standin_toolkit, devices, "--host", f"{fresh.name},{mismatch.name}", "--perf-debug")
    results = {r["board"]: r for r in doc["results"]}
    ok = results[fresh.name]
    assert ok["ok"], ok["error"]
    assert ok["time_ms"] > 0 and ok["fps"] > 0 and ok["memory_total_mib"] > 0
    assert ok["top_operators"].startswith("ConvRelu")
    refused = results[mismatch.name]
    assert not refused["ok"] and "rknn_server 1.6.0" in refused["error"] and "2.3.2" in refused["error"]
    assert proc.returncode == 8
    raw = next(r["raw"] for r in doc["runs"] if r["board"] == fresh.name)
    assert "I rknn-toolkit2 version: 2.3.2+standin" in open(raw).read()


def test_a_board_missing_from_adb_is_stopped_in_preflight_with_the_adb_hint(lab, bundles, standin_toolkit):
    fresh = board(lab, "rk3588-fresh")
    rkdeploy_in(bundles, "provision", "--bundle", "2.3.2", "--host", fresh.name, "--inventory", str(lab.inventory))
    proc, doc = perf(bundles, lab, standin_toolkit, "", "--host", fresh.name)
    error = doc["results"][0]["error"]
    assert "unreachable" in error and f"adb connect {fresh.ip}:5555" in error and "Connection refused" in error


def test_the_worker_survives_the_toolkit_raising_when_no_device_answers(standin_toolkit):
    out = run_worker(standin_toolkit, {"model": str(MODEL), "target": "rk3588", "device_id": "10.0.0.1:5555"}, 120)
    assert not out["ok"] and out["stage"] == "init_runtime" and out["error"].startswith("ValueError")
    assert "no devices/emulators found" in out["log"]


@pytest.mark.skipif(not os.environ.get("RKDEPLOY_TOOLKIT_PYTHON"), reason="set RKDEPLOY_TOOLKIT_PYTHON to a real "
                    "rknn-toolkit2 environment (inv perf.setup) to run this")
def test_the_real_toolkit_without_a_device_fails_with_a_clear_diagnosis():
    from rkdeploy.diagnose import diagnose

    out = run_worker(os.environ["RKDEPLOY_TOOLKIT_PYTHON"], {"model": str(MODEL), "target": "rk3588",
                                                            "device_id": "0123456789ab"}, 600)
    assert not out["ok"] and out["stage"] == "init_runtime"
    causes = [d.cause for d in diagnose(out["log"] + "\n" + (out["error"] or ""))]
    assert any("not listed by adb" in c for c in causes), out


def test_governors_that_fix_freq_changes_are_read_before_and_written_back_after(lab):

    from rkdeploy.connection import SshSettings
    from rkdeploy.session import BoardSession
    from rkdeploy.inventory import load
    from rkdeploy.perf import read_governors, restore_governors
    from tests.e2e.conftest import ssh

    b = board(lab, "rk3588-fresh")
    inv = load(lab.inventory)
    session = BoardSession(inv.boards[b.name], SshSettings(known_hosts=Path(inv.settings["known_hosts"]),
                                                           connect_timeout=30))
    try:
        saved = read_governors(session)
        assert sorted(Path(k).parent.name for k in saved) == ["policy0", "policy4", "policy6"]
        assert set(saved.values()) == {"schedutil"}
        # what eval_perf(fix_freq=True) does to a real board, and never undoes
        ssh(lab, b, "for f in /sys/devices/system/cpu/cpufreq/policy*/scaling_governor; do "
                    "echo performance | sudo -n tee $f > /dev/null; done")
        assert set(read_governors(session).values()) == {"performance"}
        restore_governors(session, saved)
        assert read_governors(session) == saved
    finally:
        session.close()


def test_a_run_slower_than_its_baseline_by_more_than_the_threshold_exits_16_naming_the_board(lab, bundles,
                                                                                          standin_toolkit, tmp_path):
    fresh = board(lab, "rk3588-fresh")
    assert rkdeploy_in(bundles, "provision", "--bundle", "2.3.2", "--host", fresh.name,
                       "--inventory", str(lab.inventory)).returncode == 0
    devices = f"{fresh.ip}:5555"
    proc, first = perf(bundles, lab, standin_toolkit, devices, "--host", fresh.name)
    assert proc.returncode == 0 and first["results"][0]["ok"], proc.stdout + proc.stderr
    same = tmp_path / "same.json"
    same.write_text(json.dumps(first))
    faster = tmp_path / "faster.json"        # the same board and model, at half the time: now is 100 % slower
    faster.write_text(json.dumps({**first, "results": [{**r, "time_ms": r["time_ms"] / 2} for r in first["results"]]}))

    proc, doc = perf(bundles, lab, standin_toolkit, devices, "--host", fresh.name, "--baseline", str(same))
    assert proc.returncode == 0 and doc["regressions"] == [], doc["regressions"]
    proc, doc = perf(bundles, lab, standin_toolkit, devices, "--host", fresh.name, "--baseline", str(faster))
    assert proc.returncode == 16 and doc["exit_code"] == 16
    assert [(r["board"], r["model"]) for r in doc["regressions"]] == [(fresh.name, first["results"][0]["model"])]
    # the threshold is the user's: 150 % lets a doubled time pass
    proc, doc = perf(bundles, lab, standin_toolkit, devices, "--host", fresh.name, "--baseline", str(faster),
                     "--threshold", "150")
    assert proc.returncode == 0 and doc["regressions"] == []
