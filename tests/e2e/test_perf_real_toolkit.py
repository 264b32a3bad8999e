"""`rkdeploy perf` with the REAL rknn-toolkit2 2.3.2 (its own pinned environment, RKDEPLOY_TOOLKIT_PYTHON)
and its real bundled adb, against lab boards that run the lab adbd (network adb on TCP 5555) and Rockchip's
real rknn_server; their own small lab of two boards.

What is true today: the toolkit gets through adb (root, the device tree, the server check, the forward of
@transfer_proxy) to the board's rknn_server and reads its version; the board's librknnrt is the lab's
stand-in without an NPU, so rknn_init is refused and the run stops at init_runtime. When the stand-in
answers the API, extend test_the_toolkit_reaches_the_boards_rknn_server_through_the_lab_adbd: it then gets to
eval_perf.
"""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import RKDEPLOY, inventory_copy, lab_available, ssh
from tests.lab import modelgen
from tests.lab.fleet import Lab

pytestmark = pytest.mark.lab
# generated models in this module's own directory (the shared cache may be rewritten by a concurrent suite)
_MODELS = Path(__import__("tempfile").mkdtemp(prefix="rkdeploy-tk-models-"))
RK3588 = modelgen.write(_MODELS / "rk3588_tk231.rknn", soc="rk3588", toolkit="2.3.1-source_code", format=6)
RK3568 = modelgen.write(_MODELS / "rk3568_tk232.rknn", soc="rk3568", toolkit="2.3.2", format=6)


@pytest.fixture(scope="module")
def tklab(real_toolkit):
    reason = lab_available()
    if reason:
        pytest.skip(reason)
    lab = Lab(f"k{os.getpid() % 10000}")
    lab.down()
    try:
        lab.up(profiles=["rk3588-sdk232", "rk3588-mismatch"])
        for b in lab.boards():                       # the adbd (python3 under qemu) is up a moment after sshd
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection((b.ip, 5555), timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{b.name}: no adbd on 5555"
                    time.sleep(0.3)
        yield lab
    finally:
        lab.down()


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


def test_the_toolkit_reaches_the_boards_rknn_server_through_the_lab_adbd(tklab, real_toolkit):
    b = board(tklab, "rk3588-sdk232")
    # (b) the server stopped: the preflight starts it the board's way, then the toolkit runs
    stop = subprocess.run([RKDEPLOY, "server.stop", "--host", b.name, "--inventory", str(tklab.inventory)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert ssh(tklab, b, "sleep 1; pgrep -x rknn_server").returncode == 1
    proc, doc, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name)
    assert doc["toolkit"] == "2.3.2" and proc.returncode == 8
    assert ssh(tklab, b, "pgrep -x rknn_server").returncode == 0
    run = runs[b.name]
    # the stage and the toolkit's own words (today: rknn_init refused by the board's NPU-less runtime)
    assert run["stage"] == "init_runtime" and not run["ok"]
    assert any("msg_load_ack fail" in e for e in run["toolkit_errors"]), run
    assert run["error"].startswith("init_runtime: E RKNNAPI: rknn_init")
    assert not any("different releases" in c for c in causes(run)) and "one release" in causes(run)[0]
    raw = Path(run["raw"]).read_text()
    assert "DRV: rknn_server: 2.3.2" in raw and "DRV: rknnrt: 2.3.2" in raw      # read through the forward
    log = adbd_log(tklab, b)
    for service in ('service="root:"', 'raw:cat /proc/device-tree/compatible"',
                    '"cat /proc/device-tree/compatible" -> "cat /sys/firmware/devicetree/base/compatible"',
                    'raw:cat /proc/version"', 'raw:uname -m"', 'raw:ps -A|grep rknn_server|grep -v grep"',
                    'service="local:transfer_proxy"', 'relay stream=', 'to="@transfer_proxy"'):
        assert service in log, (service, log)
    # rkdeploy's private adb server is gone: the transport was closed from the PC
    assert log.rstrip().endswith("disconnected")


def test_a_mismatched_server_is_refused_and_forced_runs_show_the_toolkits_own_message(tklab, real_toolkit):
    b = board(tklab, "rk3588-mismatch")
    proc, doc, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name)
    run = runs[b.name]
    assert proc.returncode == 8 and run["stage"] == "preflight"
    assert "rknn_server 1.6.0" in run["error"] and "2.3.2" in run["error"] and "--force" in run["error"]
    proc, doc, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name, "--force")
    run = runs[b.name]
    assert run["stage"] == "init_runtime" and any("msg_load_ack fail" in e for e in run["toolkit_errors"])
    assert "the PC toolkit and the board's rknn_server are different releases" in causes(run)
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
    b = board(tklab, "rk3588-sdk232")      # last: this board keeps no adbd afterwards
    assert ssh(tklab, b, "sudo kill $(cat /run/adbd-lab.pid)").returncode == 0
    proc, _, runs = perf(tklab, real_toolkit, RK3588, "--host", b.name)
    error = runs[b.name]["error"]
    assert proc.returncode == 8 and runs[b.name]["stage"] == "preflight"
    assert f"network adb {b.ip}:5555 unreachable" in error and f"failed to connect to {b.ip}:5555" in error, error
