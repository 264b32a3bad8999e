"""`inv perf --on-board` without boards: refusals, the remote scripts, core masks, the report rows."""
import json
import shlex
import subprocess
import sys

from rkdeploy.facts import BoardFacts, InstalledFile, NpuNode
from rkdeploy.perf_onboard import (OnboardRun, classify, cleanup_script, core_masks, push_script, refusals,
                                   run_script)
from rkdeploy.perf_report import regressions, rows
from rkdeploy.rknn_model import read_model
from rkdeploy.versions import parse_lite2, parse_runtime
from tests.lab import modelgen


def model(tmp_path, soc="rk3588", toolkit="2.3.2"):
    path = tmp_path / f"m-{soc}-{toolkit}.rknn"
    subprocess.run([sys.executable, "-m", "tests.lab.modelgen", str(path), "--soc", soc, "--format", "6", "--toolkit",
                    toolkit], check=True, capture_output=True)
    return read_model(path)


def facts(soc="rk3588", runtime="2.3.2", lite2="2.3.2", nodes=(("/dev/dri/renderD129", "render", "660"),),
          groups=("rock", "video", "render"), user="rock"):
    f = BoardFacts(user=user, user_groups=list(groups), compatible=[f"rockchip,{soc}"], python="3.11.2")
    if runtime:
        f.runtime = InstalledFile("/usr/lib/librknnrt.so", version=parse_runtime(f"librknnrt version: {runtime} (abc@2025)"))
    f.lite2 = parse_lite2(lite2) if lite2 else None
    f.npu_nodes = [NpuNode(*n) for n in nodes]
    return f


def test_a_ready_board_is_not_refused(tmp_path):
    assert refusals(model(tmp_path), facts(), "box1") == []


def test_no_lite2_is_refused_with_provision_as_the_fix(tmp_path):
    [problem] = refusals(model(tmp_path), facts(lite2=None), "box1")
    assert "rknn-toolkit-lite2 is not installed" in problem and "inv provision --host box1" in problem


def test_a_model_for_another_soc_is_refused(tmp_path):
    [problem] = refusals(model(tmp_path, soc="rk3568"), facts(), "box1")
    assert "built for rk3566, rk3568 but the board is rk3588" in problem


def test_a_runtime_older_than_the_model_is_refused_with_deploys_message(tmp_path):
    [problem] = refusals(model(tmp_path, toolkit="2.3.2"), facts(runtime="2.0.0"), "box1")
    assert "newer than the board's librknnrt" in problem and "inv provision --bundle 2.3.2" in problem


def test_a_full_tmp_is_refused_only_for_a_pushed_model(tmp_path):
    f = facts()
    f.disk_free_kb = {"/tmp": 100}
    [problem] = refusals(model(tmp_path), f, "box1")
    assert "not enough space in /tmp" in problem
    assert refusals(model(tmp_path), f, "box1", pushed=False) == []


def test_a_missing_npu_node_is_refused(tmp_path):
    [problem] = refusals(model(tmp_path), facts(nodes=()), "box1")
    assert "no NPU device node" in problem


def test_an_npu_node_the_user_may_not_open_names_the_group_to_join(tmp_path):
    [problem] = refusals(model(tmp_path), facts(groups=("rock",)), "box1")
    assert "sudo usermod -aG render rock" in problem
    assert refusals(model(tmp_path), facts(groups=("rock",), nodes=(("/dev/rknpu", "root", "666"),)), "box1") == []
    assert refusals(model(tmp_path), facts(groups=("root",), user="root"), "box1") == []


def test_a_busy_npu_is_recognised_in_the_runtimes_words():
    said = ("E RKNN: failed to submit!, op id: 0, op name: InputOperator, flags: 0x5, task start: 0, "
            "task number: 1, run task counter: 0, int status: 0\nE Catch exception when running RKNN model.")
    assert classify(said).startswith("the NPU is busy") and "fuser" in classify(said)
    assert classify("E Model is not loaded yet") == ""


def test_core_masks_per_soc():
    assert core_masks("rk3588") == core_masks("rk3588s") == ("0", "0_1", "0_1_2", "auto")
    assert core_masks("rk3576") == ("0", "0_1", "auto")
    assert core_masks("rk3568") == core_masks("rk3562") == core_masks("") == ("auto",)


def test_remote_scripts_quote_every_value():
    hostile = "x'; rm -rf / #$(reboot)"
    script = run_script("/opt/venv/bin/python", {"model": hostile}, "/tmp/rkdeploy-bench.abcdEFGH")
    header = script.split("cleanup()")[0]
    assert f"py={shlex.quote('/opt/venv/bin/python')}\n" in header
    assert "params=" + shlex.quote(json.dumps({"model": hostile}, separators=(",", ":"))) in header
    assert '"$py" - "$params"' in script and "rm -rf -- \"$dir\"" in script
    assert "rkdeploy-bench.*) rm -rf" in cleanup_script("/tmp/rkdeploy-bench.abcdEFGH")
    assert "mktemp -d" in push_script("a" * 64) and "sha256=" + "a" * 64 in push_script("a" * 64)


def test_the_push_and_run_scripts_remove_the_temporary_directory_also_on_failure(tmp_path):
    data = b"model bytes"
    import hashlib
    env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    bad = subprocess.run(["sh", "-c", push_script("0" * 64)], input=data, capture_output=True, env=env)
    assert bad.returncode == 3 and list(tmp_path.iterdir()) == []
    good = subprocess.run(["sh", "-c", push_script(hashlib.sha256(data).hexdigest())], input=data,
                          capture_output=True, env=env)
    d = good.stdout.decode().strip().removeprefix("dir=")
    assert (tmp_path / d.rsplit("/", 1)[-1] / "model.rknn").read_bytes() == data
    failed = subprocess.run(["sh", "-c", run_script("false", {}, d)], input=b"", capture_output=True, env=env)
    assert failed.returncode != 0 and list(tmp_path.iterdir()) == []


def test_rows_carry_core_mask_threads_and_percentiles_and_baselines_match_on_them(tmp_path):
    runs = [OnboardRun("box1", "m.rknn", core_mask=m, threads=t, ok=True, runs=20 * t,
                       latency_ms={"p50": p50, "p90": p50 + 1, "p99": p50 + 2}, npu_time_ms={"p50": p50 - 1},
                       throughput=1000 * t / p50) for m, t, p50 in (("0", 1, 30.0), ("0_1_2", 1, 10.0), ("0_1_2", 3, 12.0))]
    table = rows(runs)
    assert [(r["core_mask"], r["threads"], r["p50_ms"], r["p99_ms"], r["npu_ms"]) for r in table] == [
        ("0", 1, 30.0, 32.0, 29.0), ("0_1_2", 1, 10.0, 12.0, 9.0), ("0_1_2", 3, 12.0, 14.0, 11.0)]
    assert table[0]["time_ms"] == 30.0 and round(table[2]["fps"], 1) == 250.0
    baseline = tmp_path / "base.json"
    old = [dict(r) for r in table]
    old[1]["time_ms"] = 5.0
    baseline.write_text(json.dumps({"results": old}))
    assert list(regressions(table, baseline, 10)) == [("box1", "m.rknn", "0_1_2", 1)]
