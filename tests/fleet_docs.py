"""Saved `--json` documents of check, models.list and perf as the tasks print them, made by the real code
paths (check.to_json on BoardCheck results from the probe fixtures, tasks.models.list_json, perf_report.rows and
report.envelope) with fake facts, for `inv report --from DIR` tests without a lab."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from rkdeploy import report
from rkdeploy.check import BoardCheck, to_json
from rkdeploy.fleet import OK, UNREACHABLE, BoardResult, FleetRun
from rkdeploy.models import DeployedModel
from rkdeploy.perf import PerfRun
from rkdeploy.perf_parse import MemoryResult, PerfResult
from rkdeploy.perf_report import rows
from rkdeploy.policy import Target, evaluate
from rkdeploy.probe import parse_probe
from rkdeploy.tasks.models import list_json
from rkdeploy.versions import release_of
from tests.conftest import FIXTURES

SDK = "2.3.2"
MISMATCH_REASON = "rknn_server 1.6.0 and librknnrt 2.3.2 differ"
SHA_A = "a1b2c3d4e5f6" + "0" * 52
SHA_B = "0f1e2d3c4b5a" + "1" * 52


def facts(fixture: str, **changes):
    f = parse_probe((FIXTURES / "probe" / fixture).read_text())
    return dataclasses.replace(f, **changes) if changes else f


def check_doc(boards: dict[str, object] | None = None, unreachable: dict[str, str] | None = None) -> dict:
    """check's document: boards name → BoardFacts (judged by the real policy against SDK 2.3.2)."""
    target = Target(sdk=release_of(SDK))
    boards = boards if boards is not None else {"cam-01": facts("rk3588-field-1.5.0.txt"),
                                                "cam-02": facts("rk3588-mismatch.txt")}
    results = [BoardResult(name, OK, data=BoardCheck(f, evaluate(name, f, target)), commands=1, seconds=0.4)
               for name, f in boards.items()]
    results += [BoardResult(name, UNREACHABLE, error=why) for name, why in (unreachable or {}).items()]
    return json.loads(report.dumps(to_json(FleetRun(results=results), target,
                                           {"python": "/opt/tk/bin/python", "version": SDK, "note": None})))


def version(sha: str, name: str, when: str) -> dict:
    return {"name": name, "sha256": sha, "size": 2_097_152, "toolkit": SDK, "platforms": ["rk3588"], "format": 6,
            "source": f"{name}.rknn", "deployed_at": when, "deployed_by": "ci@pc"}


def models_doc(names: dict[str, str] | None = None) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    old, new = ((now - dt.timedelta(days=d)).isoformat(timespec="seconds") for d in (9, 2))
    names = names or {"cam-01": "detector", "cam-02": "detector"}
    results = [BoardResult(board, OK, data=[DeployedModel(model, SHA_B[:12], [version(SHA_A, model, old),
                                                                                version(SHA_B, model, new)])])
               for board, model in names.items()]
    return json.loads(report.dumps(list_json(FleetRun(results=results))))


def perf_run(board: str, model: str, ms: float) -> PerfRun:
    return PerfRun(board, model, ok=True, perf=PerfResult(generation="2.x", total_time_us=int(ms * 1000),
                                                          fps=round(1000 / ms, 1)),
                   memory=MemoryResult(weight=3 << 20, internal=1 << 20, total=5 << 20, exact=True))


def perf_doc(times: dict[tuple[str, str], float], onboard: list[dict] | None = None) -> dict:
    """perf's document (PC-driven rows from perf_report.rows); `onboard`: extra rows as `--on-board` writes them
    (core_mask, threads, p50/p90/p99)."""
    table = rows([perf_run(b, m, ms) for (b, m), ms in times.items()])
    for extra in onboard or []:
        table.append({"board": extra["board"], "model": extra["model"], "ok": True, "time_ms": extra["p50_ms"],
                      "fps": extra.get("fps"), "memory_total_mib": None, "weight_mib": None, "top_operators": "",
                      "error": None, "diagnosis": None, **extra})
    run = FleetRun(results=[BoardResult(b, OK) for b in dict.fromkeys(b for b, _ in times)])
    return json.loads(report.dumps(report.envelope("perf", {
        "toolkit": SDK, "raw_dir": "/tmp/raw", "isolation": "netns", "results": table, "runs": [],
        "regressions": []}, run)))


def write(directory: Path, name: str, doc: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(doc, indent=2))
    return path


BASE_TIMES = {("cam-01", "detector"): 10.0, ("cam-02", "detector"): 12.0}
NOW_TIMES = {("cam-01", "detector"): 10.4, ("cam-02", "detector"): 15.5}      # cam-02: +29 %: a regression
ONBOARD = [{"board": "cam-01", "model": "detector", "core_mask": "0_1_2", "threads": 3, "p50_ms": 4.25,
            "p90_ms": 5.5, "p99_ms": 7.75, "npu_ms": 3.9, "runs": 200, "fps": 690.0}]


def saved_fleet(directory: Path) -> dict[str, Path]:
    """A --from directory: check, models.list, perf (with an on-board row), and a baseline beside it."""
    return {"check": write(directory, "check.json", check_doc()),
            "models": write(directory, "models.json", models_doc()),
            "perf": write(directory, "perf.json", perf_doc(NOW_TIMES, ONBOARD)),
            "baseline": write(directory.parent / "baseline", "perf-baseline.json", perf_doc(BASE_TIMES))}


def saved_history(directory: Path, runs: int = 3) -> None:
    """`runs` check and perf runs as history.save names them, an hour apart."""
    from rkdeploy import history
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=runs + 1)
    for i in range(runs):
        when = start + dt.timedelta(hours=i)
        boards = {"cam-01": facts("rk3588-field-1.5.0.txt"), "cam-02": facts("rk3588-mismatch.txt")}
        if i == runs - 1:
            boards.pop("cam-01")                      # fewer mismatches later on
        history.save(directory.parent, check_doc(boards), now=when)
        history.save(directory.parent, perf_doc({k: v * (1 + 0.05 * i) for k, v in BASE_TIMES.items()}), now=when)
