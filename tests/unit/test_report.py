"""The report layer: hostile text is shown inert and literally, a render failure never loses the report or its
exit code, JSON escapes control characters, paramiko prints nothing of its own."""
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from rkdeploy import report
from rkdeploy.check import BoardCheck, exit_code as check_exit_code, to_json
from rkdeploy.check_report import render_check
from rkdeploy.fleet import CHANGED, FAILED, OK, UNREACHABLE, BoardResult, FleetRun
from rkdeploy.models import DeployedModel
from rkdeploy.models_report import render_model, render_model_list
from rkdeploy.perf_report import render_perf, to_csv
from rkdeploy.policy import ERROR, Finding, Target
from rkdeploy.probe import parse_probe
from rkdeploy.provision_report import render_provision
from rkdeploy.rknn_model import read_model
from tests.conftest import FIXTURES
from tests.lab import modelgen

OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"          # write "rm -rf ~" to the clipboard
TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
CSI_C1 = "\x9b31m"
MARKUP = "[link=http://x]click[/link]"
RAW = ("\x1b", "\x07", "\x9b")


def out_console():
    buf = io.StringIO()
    return Console(file=buf, width=120), buf


def assert_inert(text: str):
    for raw in RAW:
        assert raw not in text, repr(text)


# --- clean -------------------------------------------------------------------------------------------------

def test_clean_shows_every_control_character_as_its_visible_escape():
    assert report.clean(OSC52) == "?]52;c;cm0gLXJmIH4K?"
    assert report.clean(TITLE + CLEAR) == "?]0;pwned??[2J"
    assert report.clean(CSI_C1) == "?31m"
    assert report.clean("a\x7fb\x00c\rd") == "a?b?c?d"
    assert report.clean("evil\u202egnp.exe") == "evil?gnp.exe"                  # bidi override
    assert report.clean("line\u2028two") == "line?two"
    assert report.clean("caf\udce9") == "caf?"                                  # surrogate-escaped byte
    assert report.clean("d\ufffdtecteur") == "d\ufffdtecteur"                # U+FFFD stays


def test_newlines_and_tabs_stay_only_in_multiline_cells():
    assert report.clean("a\nb\tc") == "a?b?c"
    assert report.clean("a\r\nb\tc", multiline=True) == "a\nb\tc"
    assert report.clean("a\rb", multiline=True) == "a?b"


def test_clean_takes_any_value_and_never_raises():
    class Bad:
        def __str__(self):
            raise RuntimeError("no")

    assert report.clean(None) == "" and report.clean(12) == "12" and report.clean(b"a\x1bb") == "a?b"
    assert report.clean(Bad()) == "<Bad>"
    assert report.clean({"k": "\x1b"}) == "{'k': '\\x1b'}"                    # repr escapes it already


def test_the_report_console_prints_markup_as_text():
    buf = io.StringIO()
    con = report.console(file=buf, width=120)
    con.print("[/x] " + MARKUP + " :smile:")
    assert buf.getvalue().strip() == "[/x] " + MARKUP + " :smile:"


# --- check --------------------------------------------------------------------------------------------------

def hostile_check_run(retry_file=None):
    facts = parse_probe((FIXTURES / "probe" / "rk3588-field-1.5.0.txt").read_text())
    facts.arch = MARKUP
    facts.model = "[/x]"
    facts.compatible = ["[/x]"]
    findings = [Finding(ERROR, "server", f"server says {OSC52}{TITLE}", fix=f"{CLEAR}inv provision", short="[/x]")]
    return FleetRun(results=[
        BoardResult("box2", OK, data=BoardCheck(facts, findings), commands=1),
        BoardResult("evil", UNREACHABLE, error=f"127.0.0.1:22: Incompatible version ({TITLE}{CLEAR}{CSI_C1} instead "
                                               "of 2.0)"),
    ], retry_file=retry_file)


def test_hostile_board_fields_render_literally_and_inert_in_the_check_report():
    run = hostile_check_run(Path("/tmp/retry-check-latest.txt"))
    con, buf = out_console()
    render_check(con, run, Target(), f"rknn-toolkit2 {TITLE}2.3.2")
    text = buf.getvalue()
    assert_inert(text)
    assert "could not be drawn" not in text
    assert "[/x]" in text and "?]52;c;cm0gLXJmIH4K?" in text and "?]0;pwned" in text
    assert "?31m" in text and "fix: ?[2Jinv provision" in text
    assert "Recap: ok=0  mismatch=1  unreachable=1" in text
    assert "Boards to retry: --host @/tmp/retry-check-latest.txt" in text


def test_the_json_escapes_control_characters_and_carries_the_envelope():
    run = hostile_check_run(Path("/tmp/r.txt"))
    doc = to_json(run, Target(), {"version": None})
    text = report.dumps(doc)
    assert_inert(text)
    assert "\\u001b]52;c;" in text and "\\u009b31m" in text
    assert list(doc)[0] == "task" and doc["task"] == "check"
    assert {"target", "toolkit", "boards", "summary", "exit_code", "recap", "retry_file"} <= set(doc)
    assert doc["exit_code"] == check_exit_code(run) == report.EXIT_MISMATCH | report.EXIT_UNREACHABLE
    assert doc["recap"] == {"ok": 0, "changed": 0, "mismatch": 1, "failed": 0, "unreachable": 1, "skipped": 0}
    assert doc["retry_file"] == "/tmp/r.txt"
    assert json.loads(text)["boards"][1]["error"].startswith("127.0.0.1:22: Incompatible version (\x1b]0;")


def test_a_render_failure_falls_back_to_plain_lines_and_keeps_the_recap_and_exit_code(monkeypatch):
    def broken(self, *cells, **kw):
        raise RuntimeError("injected")

    monkeypatch.setattr(Table, "add_row", broken)
    run = hostile_check_run(Path("/tmp/r.txt"))
    con, buf = out_console()
    render_check(con, run, Target(), "rknn-toolkit2 2.3.2")
    text = buf.getvalue()
    assert_inert(text)
    assert "rkdeploy: the check table could not be drawn (RuntimeError: injected)" in text
    assert "┃" not in text and "│" not in text                     # nothing half-drawn
    assert "box2  mismatch" in text and "evil  unreachable  127.0.0.1:22: Incompatible version (?]0;" in text
    assert "Recap: ok=0  mismatch=1  unreachable=1" in text and "Boards to retry: --host @/tmp/r.txt" in text
    assert check_exit_code(run) == 6


def test_a_renderer_that_raises_while_printing_falls_back_too(monkeypatch):
    con, buf = out_console()
    original = Console.print

    def print_(self, *objects, **kw):
        if any(isinstance(o, Table) for o in objects):
            raise ValueError("boom")
        return original(self, *objects, **kw)

    monkeypatch.setattr(Console, "print", print_)
    run = FleetRun(results=[BoardResult("b1", CHANGED), BoardResult("b2", FAILED, error=OSC52)])
    render_provision(con, run, "2.3.2", False)
    text = buf.getvalue()
    assert_inert(text)
    assert "the provision table could not be drawn (ValueError: boom)" in text
    assert "b1  changed" in text and "b2  failed" in text and "Recap: ok=0  changed=1  failed=1" in text


# --- models -------------------------------------------------------------------------------------------------

def test_model_metadata_of_the_wrong_types_renders_without_raising(tmp_path):
    model = read_model(modelgen.write(tmp_path / "m.rknn", soc="rk3588", format=6, toolkit="2.3.2"))
    odd = dataclasses.replace(model, size="12", inputs="x", name=f"[/x]{TITLE}", toolkit_version=MARKUP,
                              target_platforms="rk3588", custom_ops=[OSC52], path=f"/tmp/{CLEAR}m.rknn")
    con, buf = out_console()
    render_model(con, odd)
    text = buf.getvalue()
    assert_inert(text)
    assert "could not be drawn" not in text
    assert "x / " in text and "[/x]?]0;pwned?" in text and MARKUP in text and "?[2Jm.rknn" in text
    assert "rk3588" in text and "?]52;c;" in text


def test_a_boards_odd_model_metadata_renders_in_the_model_list():
    sha = "a" * 64
    versions = [{"sha256": sha, "size": "12", "toolkit": "[/x]", "platforms": "rk3588", "deployed_at": {"x": OSC52},
                 "name": "det"}]
    weird = DeployedModel("w", "bbbbbbbbbbbb", [{"sha256": 5}])      # active_meta raises TypeError on this one
    run = FleetRun(results=[BoardResult("box1", OK, data=[DeployedModel(MARKUP, sha[:12], versions), weird]),
                            BoardResult("box2", UNREACHABLE, error=TITLE + "down")])
    con, buf = out_console()
    render_model_list(con, run)
    text = buf.getvalue()
    assert_inert(text)
    assert "could not be drawn" not in text
    assert "[/x]" in text and "[link=http://x]click[/link]" in text and "]52;c;" in text and "?]0;pwned?down" in text
    assert "Recap: ok=1  changed=0  failed=0  unreachable=1" in text


# --- perf ---------------------------------------------------------------------------------------------------

def perf_row(**kw):
    row = {"board": "box1", "model": "m.rknn", "ok": False, "time_ms": None, "fps": None, "memory_total_mib": None,
           "weight_mib": None, "top_operators": "", "error": None, "diagnosis": None}
    return {**row, **kw}


def test_perf_errors_from_the_toolkit_are_inert_in_the_table_and_the_csv():
    rows = [perf_row(error=f"E RKNN: {OSC52}[/x]", diagnosis=f"{MARKUP} → fix"), perf_row(board="b2", ok=True,
                                                                                           time_ms=1.5, fps="[/x]")]
    con, buf = out_console()
    render_perf(con, rows, {("box1", "m.rknn"): f"+20% {TITLE}"})
    text = buf.getvalue()
    assert_inert(text)
    assert "could not be drawn" not in text and "?]52;c;" in text and "[/x]" in text and MARKUP in text
    csv = to_csv(rows + [{"board": "b3", "model": "—", "error": "x"}])
    assert_inert(csv)
    assert "?]52;c;" in csv and csv.splitlines()[0].startswith("board,model,ok")


def test_a_perf_table_that_cannot_be_drawn_lists_the_boards(monkeypatch):
    monkeypatch.setattr(Table, "add_row", lambda self, *a, **k: (_ for _ in ()).throw(TypeError("bad cell")))
    con, buf = out_console()
    render_perf(con, [perf_row(error=OSC52)])
    text = buf.getvalue()
    assert "the perf table could not be drawn (TypeError: bad cell)" in text
    assert "box1  m.rknn  failed  ?]52;c;" in text
    assert_inert(text)


# --- exit codes, recap, envelope ----------------------------------------------------------------------------

def test_one_exit_code_function_for_every_fleet_task():
    run = FleetRun(results=[BoardResult("a", OK), BoardResult("b", CHANGED)])
    assert report.exit_code(run) == 0
    run.results.append(BoardResult("c", UNREACHABLE))
    assert report.exit_code(run) == 4 and report.exit_code(run, regressed=True) == 20
    run.results.append(BoardResult("d", "skipped"))
    assert report.exit_code(run) == 12
    assert report.exit_code(run, lambda r: "mismatch") == 2


def test_the_envelope_keeps_a_tasks_keys_and_adds_the_common_ones():
    run = FleetRun(results=[BoardResult("a", CHANGED), BoardResult("b", FAILED, error="x")],
                   retry_file=Path("/tmp/retry-deploy.txt"))
    doc = report.envelope("deploy", {"model": {"sha256": "s"}, "name": "det", "check": False, "boards": []}, run)
    assert list(doc) == ["task", "model", "name", "check", "boards", "exit_code", "recap", "retry_file"]
    assert doc["exit_code"] == 8 and doc["recap"]["changed"] == 1 and doc["retry_file"] == "/tmp/retry-deploy.txt"
    assert report.envelope("models.inspect", {"path": "m"}) == {"task": "models.inspect", "path": "m", "exit_code": 0}


def test_json_that_cannot_be_encoded_still_gives_valid_json_with_the_exit_code(capsys):
    run = FleetRun(results=[BoardResult("a", FAILED, error=OSC52)])
    report.print_json(report.envelope("provision", {"boards": {("a", 1): "tuple key"}}, run), run)
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 8 and doc["boards"][0]["error"] == OSC52 and "TypeError" in doc["report_error"]


def test_the_recap_prints_the_retry_file_for_every_fleet_task():
    run = FleetRun(results=[BoardResult("a", UNREACHABLE)], retry_file=Path("/tmp/retry-perf-1.txt"))
    con, buf = out_console()
    report.recap(con, run)
    assert buf.getvalue().splitlines() == ["Recap: ok=0  changed=0  failed=0  unreachable=1  skipped=0",
                                           "Boards to retry: --host @/tmp/retry-perf-1.txt"]


# --- paramiko -----------------------------------------------------------------------------------------------

HOSTILE_BANNER = r'''
import pathlib, socket, sys, tempfile, threading, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
def serve():
    while True:
        c, _ = srv.accept(); c.sendall(b"SSH-\x1b]0;pwned\x07\x1b[2J\xc2\x9b31m-x\r\n"); time.sleep(1); c.close()
threading.Thread(target=serve, daemon=True).start()
from rkdeploy.connection import SshSettings, open_connection
from rkdeploy.fleet import classify
from rkdeploy.inventory import Board
from rkdeploy import report
board = Board("evil", "127.0.0.1", srv.getsockname()[1])
try:
    open_connection(board, SshSettings(known_hosts=pathlib.Path(tempfile.mkdtemp()) / "kh", connect_timeout=3,
                                       retries=0))
except Exception as e:
    print(report.clean(classify(e, board)[1]))
'''


def test_paramiko_prints_no_traceback_and_a_hostile_ssh_banner_reaches_the_report_cleaned():
    proc = subprocess.run([sys.executable, "-c", HOSTILE_BANNER], capture_output=True, timeout=60,
                          cwd=Path(__file__).parents[2])
    assert proc.stderr == b"", proc.stderr            # before: "Exception (client): …" and a traceback, raw ESC
    out = proc.stdout.decode()
    assert "Incompatible version (?]0;pwned??[2J?31m instead of 2.0)" in out
    assert_inert(out)


def test_rkdeploy_debug_sends_paramikos_records_to_a_file(tmp_path):
    log = tmp_path / "debug.log"
    code = HOSTILE_BANNER.replace("from rkdeploy.connection", "import os; from rkdeploy.connection")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, cwd=Path(__file__).parents[2],
                          env={**__import__("os").environ, "RKDEPLOY_DEBUG": str(log)})
    assert proc.stderr == b""
    assert "Traceback" in log.read_text(errors="replace") and "Incompatible version" in log.read_text(errors="replace")


@pytest.mark.parametrize("value", [OSC52, "[/x]", MARKUP, CSI_C1, "\udce9", "\x00"])
def test_any_hostile_status_or_board_name_never_raises(value):
    run = FleetRun(results=[BoardResult(value, value, error=value)])
    con, buf = out_console()
    render_provision(con, run, value, True)
    assert_inert(buf.getvalue())
    assert "could not be drawn" not in buf.getvalue()


def test_a_perf_csv_cell_that_a_spreadsheet_would_run_as_a_formula_is_quoted():
    from rkdeploy.perf_report import to_csv

    text = to_csv([{"board": "=HYPERLINK(\"http://x\")", "model": "m.rknn", "time_ms": 1.5, "error": "-1+1"}])
    row = text.splitlines()[1]
    assert row.startswith("\"'=HYPERLINK") and ",'-1+1" in row and ",1.5," in row
