"""`rkdeploy perf` with the REAL rknn-toolkit2 2.3.2 (its own pinned environment, RKDEPLOY_TOOLKIT_PYTHON)
and its real bundled adb, against lab boards that run the lab adbd (network adb on TCP 5555), Rockchip's real
rknn_server 2.3.2 and the lab's stand-in librknnrt with its emulated NPU; their own small lab of three boards
(two rk3588-sdk232, one rk3588-mismatch).

The success path runs end to end: init_runtime, eval_perf and eval_memory through Rockchip's server, on two
boards at once (each toolkit run in its own unprivileged network namespace, rkdeploy.perf), and the report's
figures are the emulated NPU's: its documented time and memory formulas (docs/toolkit-and-adb.md §7) for the
model under test, computed here from the model file.
"""
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import RKDEPLOY, inventory_copy, own_lab, ssh, wait_until
from tests.lab import faults, modelgen

pytestmark = pytest.mark.lab
# generated models in this module's own directory (the shared cache may be rewritten by a concurrent suite)
_MODELS = Path(__import__("tempfile").mkdtemp(prefix="rkdeploy-tk-models-"))
RK3588 = modelgen.write(_MODELS / "rk3588_tk231.rknn", soc="rk3588", toolkit="2.3.1-source_code", format=6)
RK3568 = modelgen.write(_MODELS / "rk3568_tk232.rknn", soc="rk3568", toolkit="2.3.2", format=6)
# ~1.3 MB of FlatBuffer: about 21 ms of emulated NPU time per run
BIG = modelgen.write(_MODELS / "rk3588_big.rknn", soc="rk3588", toolkit="2.3.1-source_code", format=6, size_kb=1280)
_DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2, "int32": 4, "uint32": 4,
                "float32": 4, "int64": 8, "bool": 1}


def emulated_figures(path: Path) -> dict:
    """What the lab's stand-in librknnrt reports for this model (tests/lab/standins/librknnrt.c, documented in
    docs/toolkit-and-adb.md §7): run_us = (200 + flatbuffer_bytes/64 + output_elements/256) / cores (the
    toolkit's default core mask: 1 core); MEM_SIZE weight = FlatBuffer rounded up to 4 KiB, internal = twice the
    largest output rounded up to 4 KiB, total = weight + internal + every input and output byte."""
    from rkdeploy.rknn_model import read_model

    data = path.read_bytes()
    fmt = int.from_bytes(data[8:16], "little")
    fb_len = int.from_bytes(data[16:24], "little")
    assert fmt == 6 and 0 < fb_len < len(data)
    model = read_model(path)
    elems = lambda t: __import__("math").prod(t.shape)       # noqa: E731
    out_bytes = [elems(t) * _DTYPE_BYTES[t.dtype] for t in model.output_tensors]
    io = sum(elems(t) * _DTYPE_BYTES[t.dtype] for t in model.input_tensors) + sum(out_bytes)
    up = lambda n: (n + 4095) // 4096 * 4096                  # noqa: E731
    weight, internal = up(fb_len), up(2 * max(out_bytes))
    return {"run_us": 200 + fb_len // 64 + sum(elems(t) for t in model.output_tensors) // 256,
            "weight": weight, "internal": internal, "other": io, "total": weight + internal + io}



@pytest.fixture(scope="module")
def tklab(real_toolkit):
    with own_lab("tk", profiles=["rk3588-sdk232", "rk3588-sdk232", "rk3588-mismatch"]) as lab:
        for b in lab.boards():                       # the adbd (python3 under qemu) is up a moment after sshd
            wait_until(lambda: _accepts(b.ip, 5555), 60, f"{b.name}: adbd on 5555", every=0.3)
        yield lab


def _accepts(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=2).close()
        return True
    except OSError:
        return False


def board(lab, profile):
    return next(b for b in lab.boards() if b.profile == profile)


def perf(lab, toolkit, model, *args, inventory=None):
    env = dict(os.environ, RKDEPLOY_TOOLKIT_PYTHON=toolkit)
    proc = subprocess.run([RKDEPLOY, "perf", "--model", str(model), "--json", "--inventory",
                           str(inventory or lab.inventory), *args], capture_output=True, text=True, env=env,
                          timeout=600, stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(proc.stdout + proc.stderr) from None
    return proc, doc, {r["board"]: r for r in doc["runs"]}


def adbd_log(lab, b) -> str:
    return ssh(lab, b, "sudo cat /var/log/adbd-lab.log").stdout


def causes(run) -> list[str]:
    return [d["cause"] for d in run["diagnoses"]]


def test_perf_all_runs_end_to_end_on_two_boards_and_reports_the_emulated_npus_figures(tklab, real_toolkit, tmp_path):
    boards = [b for b in tklab.boards() if b.profile == "rk3588-sdk232"]
    assert len(boards) == 2
    # the inventory of the two matching boards, for `--all`
    inventory = inventory_copy(tklab, tmp_path)
    doc = __import__("yaml").safe_load(inventory.read_text())
    doc["boards"] = {k: v for k, v in doc["boards"].items() if k in {b.name for b in boards}}
    inventory.write_text(__import__("yaml").safe_dump(doc))
    # the server stopped on one of them: the preflight starts it the board's way, then the toolkit runs
    stop = subprocess.run([RKDEPLOY, "server.stop", "--host", boards[0].name, "--inventory", str(inventory)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert ssh(tklab, boards[0], "pgrep -x rknn_server").returncode == 1      # server.stop waits for its end

    proc, doc, runs = perf(tklab, real_toolkit, BIG, "--all", "--perf-debug", inventory=inventory)
    assert proc.returncode == 0, [(r["board"], r["stage"], r["error"]) for r in runs.values() if not r["ok"]] \
        or proc.stderr[-3000:]
    assert doc["toolkit"] == "2.3.2" and doc["isolation"] == "netns"
    assert ssh(tklab, boards[0], "pgrep -x rknn_server").returncode == 0
    want = emulated_figures(BIG)
    assert 15000 < want["run_us"] < 30000
    results = {r["board"]: r for r in doc["results"]}
    for b in boards:
        run = runs[b.name]
        assert run["ok"] and run["stage"] == "done" and not run["error"] and not run["toolkit_errors"], run
        perf_, memory = run["perf"], run["memory"]
        # the emulated NPU's time, from the runtime's per-layer table through rknn_server and the toolkit
        assert perf_["operator_time_us"] == want["run_us"], (perf_, want)
        assert sum(layer["time_us"] for layer in perf_["layers"]) == want["run_us"]
        assert [layer["op_type"] for layer in perf_["layers"]][::len(perf_["layers"]) - 1] == ["InputOperator",
                                                                                                "OutputOperator"]
        # eval_memory's dict: MEM_SIZE of the stand-in, exactly
        assert memory["exact"] and {k: memory[k] for k in ("weight", "internal", "other", "total")} == \
            {k: want[k] for k in ("weight", "internal", "other", "total")}, (memory, want)
        row = results[b.name]
        assert row["ok"] and row["time_ms"] == round(want["run_us"] / 1000, 3)
        assert row["fps"] == round(1e6 / want["run_us"], 2)
        assert row["memory_total_mib"] == round(want["total"] / 2 ** 20, 2)
        assert row["weight_mib"] == round(want["weight"] / 2 ** 20, 2)
        assert row["top_operators"].split(",")[0].split()[0] in {"ConvRelu", "Conv", "Add"}
        assert run["governors_restored"] == 3
        raw = Path(run["raw"]).read_text()
        assert "DRV: rknn_server: 2.3.2" in raw and "DRV: rknnrt: 2.3.2" in raw      # read through the forward
        assert "rkdeploy: adb connect 127.0.0.1:7555: connected to 127.0.0.1:7555" in raw   # its own namespace
        log = adbd_log(tklab, b)
        for service in ('service="root:"', 'raw:cat /proc/device-tree/compatible"',
                        '"cat /proc/device-tree/compatible" -> "cat /sys/firmware/devicetree/base/compatible"',
                        'raw:cat /proc/version"', 'raw:uname -m"', 'raw:ps -A|grep rknn_server|grep -v grep"',
                        'service="local:transfer_proxy"', 'relay stream=', 'to="@transfer_proxy"'):
            assert service in log, (service, log)
        # rkdeploy's adb servers are gone: every transport was closed from the PC
        assert log.rstrip().endswith("disconnected")
        assert ssh(tklab, b, "cat /sys/devices/system/cpu/cpufreq/policy0/scaling_governor").stdout.strip() == \
            "schedutil"

    # without --perf-debug: the toolkit's Total Time is rknn_server's wall clock around the really slept run
    proc, doc, runs = perf(tklab, real_toolkit, BIG, "--all", "--parallel", "1", inventory=inventory)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for b in boards:
        p = runs[b.name]["perf"]
        assert want["run_us"] <= p["total_time_us"] < want["run_us"] + 500_000 and p["fps"] > 0, p


def test_a_mismatched_server_is_refused_and_forced_runs_show_the_toolkits_own_message(tklab, real_toolkit):
    b = board(tklab, "rk3588-mismatch")
    proc, doc, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name)
    run = runs[b.name]
    assert proc.returncode == 8 and run["stage"] == "preflight"
    assert "rknn_server 1.6.0" in run["error"] and "2.3.2" in run["error"] and "--force" in run["error"]
    # forced: Rockchip's 1.6.0 server serves toolkit 2.3.2 without an error (with a runtime that answers), so
    # the run goes through; the mismatch is named from the toolkit's own RKNN VERSION lines
    proc, doc, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name, "--force")
    run = runs[b.name]
    assert run["ok"] and run["stage"] == "done", run
    mismatch = [d for d in run["diagnoses"] if d["cause"] == "the PC toolkit and the board's rknn_server are "
                                                                 "different releases"]
    assert mismatch and mismatch[0]["line"] == "API: 2.3.2, DRV: rknn_server: 1.6.0", run["diagnoses"]
    assert "inv provision --bundle" in mismatch[0]["fix"]
    assert "different releases" in next(r for r in doc["results"] if r["board"] == b.name)["diagnosis"]
    assert "DRV: rknn_server: 1.6.0" in Path(run["raw"]).read_text()


def test_a_model_for_another_soc_is_refused_before_the_toolkit_runs(tklab, real_toolkit):
    b = board(tklab, "rk3588-sdk232")
    proc, doc, runs = perf(tklab, real_toolkit, RK3568, "--host", b.name)
    run = runs[b.name]
    assert run["stage"] == "preflight" and "built for rk3566, rk3568, the board is rk3588" in run["error"]


def test_a_wrong_adb_port_is_reported_with_adbs_own_words(tklab, real_toolkit, tmp_path):
    b = board(tklab, "rk3588-sdk232")
    inventory = inventory_copy(tklab, tmp_path)
    doc = __import__("yaml").safe_load(inventory.read_text())
    doc["boards"][b.name]["adb"] = f"{b.ip}:5599"
    inventory.write_text(__import__("yaml").safe_dump(doc))
    proc, _, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name, inventory=inventory)
    error = runs[b.name]["error"]
    assert runs[b.name]["stage"] == "preflight" and f"network adb {b.ip}:5599 unreachable" in error
    assert f"failed to connect to {b.ip}:5599" in error, error


def test_adbd_stopped_on_the_board_is_reported_with_the_cause(tklab, real_toolkit):
    b = board(tklab, "rk3588-sdk232")
    faults.stop_adbd(tklab, b)
    try:
        wait_until(lambda: not _accepts(b.ip, 5555), 30, "adbd stopped")
        proc, _, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name)
    finally:
        faults.start_adbd(tklab, b)
        wait_until(lambda: _accepts(b.ip, 5555), 60, f"{b.name}: adbd on 5555 again", every=0.3)
    error = runs[b.name]["error"]
    assert proc.returncode == 8 and runs[b.name]["stage"] == "preflight"
    assert f"network adb {b.ip}:5555 unreachable" in error and f"failed to connect to {b.ip}:5555" in error, error
