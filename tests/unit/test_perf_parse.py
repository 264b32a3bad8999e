"""eval_perf / eval_memory parsers on every fixture that holds eval output, and the failure diagnosis."""
import pytest

from rkdeploy.diagnose import diagnose
from rkdeploy.perf_parse import parse_memory, parse_perf
from tests.conftest import FIXTURES

OUT = FIXTURES / "toolkit-output"


def text(prefix):
    return next(OUT.glob(f"{prefix}-*.txt")).read_text()


@pytest.mark.parametrize("prefix,gen,total,fps,op_time,rw_kb,layers,ranking,top", [
    ("03", "1.x", None, None, 20274, 0.0, 2, 7, ("ConvRelu", 36, 13166, 64.94)),
    ("06", "1.x", None, None, 14147, 0.0, 2, 7, ("ConvRelu", 36, 9338, 66.0)),
    ("09", "1.x", None, None, 27987, 88.4914 * 1024, 23, 8, ("ConvRelu", 50, 19301, 68.96)),
    ("11", "2.x", None, None, 128441, 289739.0, 18, 11, ("ConvExSwish", 57, 100965, 78.61)),
    ("13", "2.x", 17219, 58.08, None, None, 0, 0, None),
    ("14", "2.x", 17219, 58.08, None, None, 0, 0, None),
    ("15", "2.x", None, None, 128441, 289739.0, 4, 3, ("ConvExSwish", 57, 100965, 78.61)),
    ("16", "2.x", None, None, 128441, 289739.0, 4, 3, ("ConvExSwish", 57, 100965, 78.61)),
])
def test_eval_perf_outputs_of_both_generations_parse(prefix, gen, total, fps, op_time, rw_kb, layers, ranking, top):
    perf = parse_perf(text(prefix))
    assert (perf.generation, perf.total_time_us, perf.fps, perf.operator_time_us) == (gen, total, fps, op_time)
    assert perf.memory_rw_kb == pytest.approx(rw_kb) if rw_kb is not None else perf.memory_rw_kb is None
    assert (len(perf.layers), len(perf.ranking)) == (layers, ranking)
    if top:
        first = perf.ranking[0]
        assert (first.op_type, first.calls, first.total_us, first.ratio_pct) == top


def test_2x_frequency_lists_fps_and_per_layer_times_are_read():
    perf = parse_perf(text("15"))                       # with ANSI colour codes in it
    assert perf.frequencies == {"cpu": [1800000, 2256000, 2304000], "npu": [1000000000], "ddr": [2112000000]}
    assert perf.layers[1].op_type == "ConvExSwish" and perf.layers[1].time_us == 16130
    assert parse_perf(text("13")).effective_fps == 58.08
    assert parse_perf(text("11")).effective_fps == round(1e6 / 128441, 2)


def test_a_ranking_that_ends_with_a_total_row_keeps_the_total_out_of_the_operators():
    with_total = text("16") + "Total              67           1138         0            100965       102103         100.00%\n"
    perf = parse_perf(with_total)
    assert [r.op_type for r in perf.ranking] == ["ConvExSwish", "OutputOperator", "InputOperator"]


@pytest.mark.parametrize("prefix,weight,internal,other,total,exact", [
    ("04", 3.53 * 2 ** 20, 1.67 * 2 ** 20, None, 5.58 * 2 ** 20, False),
    ("07", 3.53 * 2 ** 20, 1.67 * 2 ** 20, None, 5.66 * 2 ** 20, False),
    ("09", 6.99 * 2 ** 20, 5.86 * 2 ** 20, None, 18.16 * 2 ** 20, False),
    ("10", 4312608, 1756160, None, 6068768, True),       # 1.x dict keys win over the rounded printout
    ("17", 3698688, 1756160, 484352, 5939200, True),
    ("18", 3698688, 1756160, 484352, 5939200, True),
])
def test_eval_memory_text_and_returned_dicts_of_both_key_styles_parse(prefix, weight, internal, other, total, exact):
    mem = parse_memory(text(prefix))
    assert mem.weight == int(weight) and mem.internal == int(internal) and mem.total == int(total)
    assert mem.other == (int(other) if other else None) and mem.exact == exact


def test_outputs_without_eval_results_parse_to_nothing():
    for prefix in ("01", "02", "05", "22", "23", "24"):
        assert parse_perf(text(prefix)) is None and parse_memory(text(prefix)) is None


def test_every_failure_line_of_the_field_fixture_has_a_cause_and_a_fix():
    body = text("25").split("---- verbatim output below this line ----")[1]
    context = ("6, 1", "load model failed", "rknn_server_proxy.md")
    for line in body.strip().splitlines():
        if any(c in line for c in context):
            continue
        found = diagnose(line)
        assert found and found[0].fix, line


def test_a_whole_log_gives_each_cause_once():
    body = text("25")
    causes = [d.cause for d in diagnose(body)]
    assert len(causes) == len(set(causes)) and len(causes) >= 10


def test_a_server_of_another_release_is_named_from_the_toolkits_version_lines_even_when_the_run_went_through():
    log = ("D RKNNAPI:   API: 2.3.2 (1842325 build@2025-03-30T09:55:23)\n"
           "D RKNNAPI:   DRV: rknn_server: 1.6.0 (535b468 build@2023-12-11T17:05:07)\n"
           "D RKNNAPI:   DRV: rknnrt: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\nTotal Time(us): 500\n")
    (found,) = diagnose(log)
    assert found.cause == "the PC toolkit and the board's rknn_server are different releases"
    assert found.line == "API: 2.3.2, DRV: rknn_server: 1.6.0" and "inv provision" in found.fix
    assert diagnose(log.replace("1.6.0 (535b468", "2.3.2 (1842325")) == []


def test_the_report_renders_parsed_runs_and_marks_regressions_against_a_baseline(tmp_path):
    import json
    from io import StringIO

    from rich.console import Console

    from rkdeploy.perf import PerfRun
    from rkdeploy.perf_report import regressions, render_perf, rows, to_csv

    runs = [PerfRun("box1", "yolo.rknn", ok=True, perf=parse_perf(text("16")), memory=parse_memory(text("17"))),
            PerfRun("box2", "yolo.rknn", ok=True, perf=parse_perf(text("14")), memory=parse_memory(text("18")))]
    table = rows(runs)
    assert table[0]["time_ms"] == 128.441 and table[1]["fps"] == 58.08 and table[0]["memory_total_mib"] == 5.66
    baseline = tmp_path / "old.json"
    faster = [dict(r, time_ms=r["time_ms"] / 2 if r["board"] == "box1" else r["time_ms"]) for r in table]
    baseline.write_text(json.dumps({"results": faster}))
    regressed = regressions(table, baseline, 10)
    assert list(regressed) == [("box1", "yolo.rknn")] and regressed[("box1", "yolo.rknn")].startswith("+100.0%")
    out = StringIO()
    render_perf(Console(file=out, width=200, color_system=None), table, regressed)
    rendered = out.getvalue()
    assert "128.441" in rendered and "58.08" in rendered and "REGRESSION +100.0%" in rendered
    assert "ConvExSwish 78.61%" in rendered
    assert to_csv(table).splitlines()[0].startswith("board,model,ok,time_ms,fps")
