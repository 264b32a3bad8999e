"""`rkdeploy perf --on-board` on a lab of its own: Rockchip's real lite2 2.3.2 (provisioned from a bundle) on
emulated boards, against the lab's stand-in librknnrt and its emulated NPU (run time divided by the cores of
the core mask: docs/toolkit-and-adb.md §7), through the lab's /proc/device-tree preload (§8)."""
import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import need_lab, own_lab, rkdeploy_in, ssh

pytestmark = pytest.mark.lab
PROFILES = ["rk3588-fresh", "rk3588-fresh", "rk3588-fresh", "rk3568-fresh"]


@pytest.fixture(scope="module")
def onboard(bundles, tmp_path_factory):
    need_lab()
    work = tmp_path_factory.mktemp("onboard")
    models = {}
    for soc in ("rk3588", "rk3568"):
        models[soc] = work / f"{soc}.rknn"
        subprocess.run([sys.executable, "-m", "tests.lab.modelgen", str(models[soc]), "--soc", soc, "--format", "6",
                        "--toolkit", "2.3.2", "--size-kb", "2048", "--inputs", "images:1x3x64x64:int8",
                        "--outputs", "out:1x1000:float16"], check=True, capture_output=True)
    with own_lab("ob", profiles=PROFILES) as lab:
        proc = rkdeploy_in(bundles, "provision", "--all", "--bundle", "2.3.2", "--inventory", str(lab.inventory),
                           timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield lab, bundles, models


def perf(cwd, lab, *args, timeout=900):
    proc = rkdeploy_in(cwd, "perf", "--on-board", "--json", "--inventory", str(lab.inventory), *args, timeout=timeout)
    return proc, json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}


def test_the_whole_fleet_per_core_mask_and_threads_and_a_model_for_another_soc_is_refused(onboard):
    lab, work, models = onboard
    proc, doc = perf(work, lab, "--all", "--model", f"{models['rk3588']},{models['rk3568']}", "--threads", "1,2",
                     "--warmup", "1", "--runs", "6")
    assert proc.returncode == 8, proc.stdout + proc.stderr         # the refusals fail their boards
    rows = doc["results"]
    for box in ("box1", "box2", "box3"):
        mine = {(r["core_mask"], r["threads"]): r for r in rows if r["board"] == box and r["model"] == "rk3588.rknn"}
        assert set(mine) == {(m, t) for m in ("0", "0_1", "0_1_2", "auto") for t in (1, 2)}, rows
        assert all(r["ok"] and r["runs"] == 6 * r["threads"] for r in mine.values()), mine
        # the emulation divides the NPU time by the mask's cores: the runtime's own time (PERF_RUN) shows it
        # exactly, the wall-clock latency too (plus Python's and qemu's overhead)
        assert mine[("0_1_2", 1)]["npu_ms"] * 2.9 < mine[("0", 1)]["npu_ms"] < mine[("0_1_2", 1)]["npu_ms"] * 3.1
        assert mine[("0_1_2", 1)]["p50_ms"] < mine[("0", 1)]["p50_ms"] * 0.7
        assert mine[("0", 2)]["fps"] > mine[("0", 1)]["fps"] * 1.3            # two contexts run concurrently
        assert all(r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] for r in mine.values())
        [refused] = [r for r in rows if r["board"] == box and r["model"] == "rk3568.rknn"]
        assert not refused["ok"] and "built for rk3566, rk3568 but the board is rk3588" in refused["error"]
    box4 = [r for r in rows if r["board"] == "box4"]
    mine = [r for r in box4 if r["model"] == "rk3568.rknn"]
    assert all(r["ok"] and r["core_mask"] == "auto" for r in mine) and sorted(r["threads"] for r in mine) == [1, 2]
    assert "built for rk3588, rk3588s but the board is rk3568" in next(r for r in box4 if r["model"] == "rk3588.rknn")["error"]
    # the pushed models are gone; the raw outputs are kept
    for b in lab.boards():
        assert ssh(lab, b, "ls -d /tmp/rkdeploy-bench.* 2>/dev/null | wc -l").stdout.strip() == "0"
    raw = {r["raw_path"] for r in doc["runs"] if r["raw_path"]}
    assert raw and all(os.path.exists(p) and "RKDEPLOY-BENCH-RESULT" in open(p).read() for p in raw)


def test_the_deployed_model_by_name_and_the_table(onboard):
    lab, work, models = onboard
    proc = rkdeploy_in(work, "deploy", str(models["rk3588"]), "--host", "box1", "--name", "detector",
                       "--inventory", str(lab.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc, doc = perf(work, lab, "--host", "box1", "--name", "detector", "--runs", "3", "--warmup", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {r["core_mask"] for r in doc["results"]} == {"0", "0_1", "0_1_2", "auto"}
    assert all(r["model"] == "detector" and r["ok"] for r in doc["results"])
    table = rkdeploy_in(work, "perf", "--on-board", "--host", "box1", "--name", "detector", "--runs", "3",
                        "--inventory", str(lab.inventory))
    assert table.returncode == 0 and "On-board performance" in table.stdout and "0_1_2" in table.stdout


def test_fix_freq_sets_performance_and_puts_the_governors_back(onboard):
    lab, work, models = onboard
    b = lab.board("box1")
    before = ssh(lab, b, "cat /sys/devices/system/cpu/cpufreq/policy*/scaling_governor").stdout.split()
    assert before == ["schedutil"] * 3
    proc, doc = perf(work, lab, "--host", "box1", "--model", str(models["rk3588"]), "--runs", "2", "--warmup", "0",
                     "--fix-freq")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ssh(lab, b, "cat /sys/devices/system/cpu/cpufreq/policy*/scaling_governor").stdout.split() == before


def test_a_busy_npu_is_reported_with_the_runtimes_words(onboard):
    lab, work, models = onboard
    b = lab.board("box2")
    lab.board_root_exec(b, "mkdir -p /run/rkdeploy-lab && echo 'pid 4242 (camera-app)' > /run/rkdeploy-lab/npu-busy")
    try:
        proc, doc = perf(work, lab, "--host", "box2", "--model", str(models["rk3588"]), "--runs", "2", "--warmup", "1")
    finally:
        lab.board_root_exec(b, "rm -f /run/rkdeploy-lab/npu-busy")
    assert proc.returncode == 8
    assert doc["results"] and all("the NPU is busy" in r["error"] and "camera-app" in r["error"]
                                  for r in doc["results"]), doc["results"]


def test_a_board_without_lite2_is_refused_with_provision_as_the_fix(onboard):
    lab, work, models = onboard
    b = lab.board("box3")
    out = lab.board_root_exec(b, "python3 -m pip uninstall -y -q --break-system-packages rknn-toolkit-lite2")
    assert out.returncode == 0, out.stderr
    try:
        proc, doc = perf(work, lab, "--host", "box3", "--model", str(models["rk3588"]))
    finally:                                         # put it back the way the fix says, for the other tests
        again = rkdeploy_in(work, "provision", "--host", "box3", "--bundle", "2.3.2", "--inventory", str(lab.inventory),
                            timeout=900)
        assert again.returncode == 0, again.stdout + again.stderr
    assert proc.returncode == 8
    [row] = doc["results"]
    assert "rknn-toolkit-lite2 is not installed" in row["error"] and "inv provision --host box3" in row["error"]
