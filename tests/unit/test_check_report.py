"""The check report as a user sees it, rendered to a string."""
from io import StringIO

from packaging.version import Version
from rich.console import Console

from rkdeploy.check import BoardCheck, exit_code, to_json
from rkdeploy.report import EXIT_MISMATCH, EXIT_UNREACHABLE
from rkdeploy.check_report import render_check
from rkdeploy.fleet import OK, UNREACHABLE, BoardResult, FleetRun
from rkdeploy.policy import Target, evaluate
from rkdeploy.probe import parse_probe
from tests.conftest import FIXTURES


def fleet_run(target):
    rows = []
    for name, fixture in (("box2", "rk3588-field-1.5.0.txt"), ("box3", "rk3588-mismatch.txt")):
        facts = parse_probe((FIXTURES / "probe" / fixture).read_text())
        rows.append(BoardResult(name, OK, data=BoardCheck(facts, evaluate(name, facts, target)), commands=1))
    rows.append(BoardResult("box9", UNREACHABLE, error="no answer from 10.0.0.9:22 within 10 s"))
    return FleetRun(results=rows)


def render(run, target):
    out = StringIO()
    render_check(Console(file=out, width=160, color_system=None), run, target, "rknn-toolkit2 2.3.2")
    return out.getvalue()


def test_the_table_shows_versions_side_by_side_with_reasons_and_a_recap():
    text = render(fleet_run(Target()), Target())
    box2 = next(line for line in text.splitlines() if line.startswith("│ box2"))
    assert "rk3588" in box2 and "0.9.2" in box2 and box2.count("1.5.0") == 2 and "ok" in box2
    box3 = next(line for line in text.splitlines() if line.startswith("│ box3"))
    assert "server 1.6.0 ≠ runtime 2.3.2" in box3 and "mismatch" in box3
    assert "no answer from 10.0.0.9:22" in text
    assert "fix: inv provision --host box3" in text
    assert "Recap: ok=1  mismatch=1  unreachable=1" in text


def test_exit_code_and_json_tell_mismatch_and_unreachable_apart():
    run = fleet_run(Target(sdk=Version("2.3.2")))
    assert exit_code(run) == EXIT_MISMATCH | EXIT_UNREACHABLE
    doc = to_json(run, Target(sdk=Version("2.3.2")), {"version": None})
    assert doc["summary"] == {"ok": 0, "mismatch": 2, "unreachable": 1, "failed": 0, "skipped": 0}
    box2 = doc["boards"][0]
    assert box2["facts"]["runtime"]["version"]["release"] == "1.5.0"
    assert box2["facts"]["soc"] == "rk3588" and box2["remote_commands"] == 1
    assert exit_code(FleetRun(results=fleet_run(Target()).results[:1])) == 0
