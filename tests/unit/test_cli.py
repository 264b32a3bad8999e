"""The command line without boards: every task loads and documents its options; offline tasks work."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from rkdeploy.cli import namespace
from tests.conftest import FIXTURES
from tests.lab import modelgen

RKDEPLOY = str(Path(sys.executable).parent / "rkdeploy")


def cli(*args, env=None):
    return subprocess.run([RKDEPLOY, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env=env)


def test_every_task_has_a_docstring_and_help_for_each_of_its_options():
    for name in namespace.task_names:
        proc = cli("--help", name)
        assert proc.returncode == 0, (name, proc.stderr)
        assert "Docstring:\n  none" not in proc.stdout, name
        options = [line for line in proc.stdout.splitlines() if line.strip().startswith("-")]
        undocumented = [line for line in options
                        if not re.sub(r"^\s*(-\w(\s?\[?\w+\]?)?, )?--[\w-]+(=\[?\w+\]?)?", "", line).strip()]
        assert not undocumented, (name, undocumented)


def test_models_inspect_and_perf_parse_work_offline_with_json(tmp_path):
    model = modelgen.write(tmp_path / "tiny.rknn", soc="rk3568", format=6, toolkit="2.5.0",
                           outputs=[modelgen.Tensor("ids", (1, 10), "int64")])
    doc = json.loads(cli("models.inspect", str(model), "--json").stdout)
    assert doc["target_platforms"] == ["rk3568"] and doc["format_version"] == 6
    assert doc["output_tensors"][0]["dtype"] == "int64" and doc["input_tensors"][0]["shape"] == [1, 3, 224, 224]
    assert doc["compiler_version"] == "2.5.0" and doc["sha256"] and doc["metadata"]["name"] == "rkdeploy-generated"
    log = next((FIXTURES / "toolkit-output").glob("16-*.txt"))
    doc = json.loads(cli("perf.parse", str(log), "--json").stdout)
    assert doc["perf"]["operator_time_us"] == 128441 and doc["perf"]["ranking"][0]["op_type"] == "ConvExSwish"


def test_a_log_with_only_a_failure_is_parsed_into_its_diagnosis(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("E RKNNAPI: rknn_init,  server connect fail!  ret = -9(ERROR_PIPE)!\n")
    doc = json.loads(cli("perf.parse", str(log), "--json").stdout)
    assert "inv server.start" in doc["diagnoses"][0]["fix"]


def test_perf_without_a_toolkit_environment_says_how_to_get_one(tmp_path):
    model = modelgen.write(tmp_path / "tiny.rknn", soc="rk3568", format=6, toolkit="2.5.0")
    # without RKDEPLOY_TOOLKIT_PYTHON, which scripts/test.sh sets for the real-toolkit tests
    env = {k: v for k, v in os.environ.items() if k != "RKDEPLOY_TOOLKIT_PYTHON"}
    proc = cli("perf", "--all", "--model", str(model), env=env)
    assert proc.returncode == 1 and "inv perf.setup" in proc.stderr


def test_a_hostile_ssh_banner_reaches_the_check_report_and_json_inert_and_the_run_exits_4(tmp_path):
    import socket
    import threading
    import time
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.sendall(b"SSH-\x1b]0;pwned\x07\x1b]52;c;cm0K\x07\xc2\x9b2J-x\r\n")
            time.sleep(0.5)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(f"settings:\n  known_hosts: {tmp_path / 'kh'}\n  connect_timeout: 3\n"
                         f"boards:\n  evil:\n    host: 127.0.0.1\n    port: {srv.getsockname()[1]}\n    user: rock\n")
    env = {k: v for k, v in os.environ.items() if k != "RKDEPLOY_TOOLKIT_PYTHON"} | {"HOME": str(tmp_path)}
    try:
        table = cli("check", "--all", "--inventory", str(inventory), env=env)
        doc_proc = cli("check", "--all", "--json", "--inventory", str(inventory), env=env)
    finally:
        srv.close()
    for proc in (table, doc_proc):
        assert proc.returncode == 4, proc.stderr
        for raw in ("\x1b", "\x07", "\x9b"):
            assert raw not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and "Exception (client)" not in proc.stderr
    squashed = re.sub(r"[\s│]", "", table.stdout)          # the Reason column folds long text over lines
    assert "Incompatibleversion(?]0;pwned??]52;c;cm0K??2Jinsteadof2.0)" in squashed, table.stdout
    assert "Recap: ok=0  mismatch=0  unreachable=1" in table.stdout, table.stdout[-600:]
    assert "Boards to retry: --host @" in table.stdout
    doc = json.loads(doc_proc.stdout)
    assert "\\u001b]0;pwned" in doc_proc.stdout and "\x1b]52;c;" in doc["boards"][0]["error"]
    assert doc["task"] == "check" and doc["exit_code"] == 4 and doc["recap"]["unreachable"] == 1
    assert doc["retry_file"].startswith(str(tmp_path)) and doc["summary"]["unreachable"] == 1
