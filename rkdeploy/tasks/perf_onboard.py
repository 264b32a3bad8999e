"""`inv perf --on-board`: the task side (options, fleet run, the same report as `inv perf`)."""
from __future__ import annotations

import json as jsonlib
import time
from pathlib import Path

from invoke import Exit

from ..deploy import DeployError
from ..perf_onboard import onboard_job
from ..perf_report import regressions, render_perf, rows, to_csv
from ..remote import RemoteValueError, model_name
from ..settings import state_dir
from .. import report
from . import common

ONBOARD_HELP = {
    "on-board": "benchmark on the boards themselves, over SSH, with their own rknn-toolkit-lite2 and librknnrt "
                "(every board at once; per NPU core mask and thread count)",
    "name": "--on-board: the model deployed by `inv deploy --name NAME` (<model-dir>/NAME/current.rknn)",
    "threads": "--on-board: thread counts, comma-separated (each thread its own RKNNLite context; default 1)",
    "warmup": "--on-board: warm-up inferences per thread (default 3)",
    "runs": "--on-board: timed inferences per thread (default 20)",
    "duration": "--on-board: run each combination for this many seconds instead of --runs",
    "parallel": common.SELECT_HELP["parallel"],
    "model-dir": common.OPTION_HELP["model-dir"],
}


def _ints(text, what: str) -> list[int]:
    try:
        values = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise common.fail(f"{what}: comma-separated whole numbers, not {text!r}") from None
    if not values or any(v < 1 or v > 64 for v in values):
        raise common.fail(f"{what}: each between 1 and 64")
    return values


def run_onboard(c, *, model, name, host, group, all, inventory, fix_freq, json, csv, baseline, threshold, timeout,
                accept_new_host_keys, threads, warmup, runs, duration, parallel, model_dir):
    if bool(model) == bool(name):
        raise common.fail("--on-board needs either --model a.rknn[,b.rknn] or --name NAME (a deployed model)")
    models = [common.model_or_fail(m) for m in model.split(",") if m] if model else None
    if name:
        try:
            model_name(name, "--name")
        except RemoteValueError as e:
            raise common.fail(str(e)) from None
    thread_counts = _ints(threads, "--threads")
    warmup, runs, duration = int(warmup), int(runs), float(duration)
    if warmup < 0 or runs < 1 or duration < 0:
        raise common.fail("--warmup ≥ 0, --runs ≥ 1, --duration ≥ 0")
    inv, boards = common.selection(c, inventory, host, group, all)
    raw_dir = state_dir(c.config) / "perf" / (time.strftime("%Y%m%d-%H%M%S") + "-onboard")
    job = onboard_job(models, name=name, model_dir=model_dir, threads=thread_counts, warmup=warmup, runs=runs,
                      duration=duration, fix_freq=fix_freq, timeout=float(timeout), raw_dir=raw_dir)
    try:
        run = common.run(c, inv, boards, job, common.settings(c, inv, accept_new_host_keys, False), "perf --on-board",
                         parallel)
    except DeployError as e:
        raise common.fail(str(e)) from None
    runs_done = [p for r in run.results for p in (r.data or [])]
    table = rows(runs_done)
    for r in run.results:
        if r.status == "unreachable" or (not r.data and r.error):
            table.append({"board": r.board, "model": name or "—", "ok": False, "time_ms": None,
                          "fps": None, "memory_total_mib": None, "weight_mib": None, "top_operators": "",
                          "error": r.error, "diagnosis": None, "core_mask": None, "threads": None, "p50_ms": None,
                          "p90_ms": None, "p99_ms": None, "npu_ms": None, "runs": None})
    regressed = regressions(table, Path(baseline), float(threshold)) if baseline else {}
    if json:
        print(jsonlib.dumps({"mode": "on-board", "raw_dir": str(raw_dir), "results": table,
                             "runs": [p.to_dict() for p in runs_done],
                             "regressions": [dict(zip(("board", "model", "core_mask", "threads"), k), why=w)
                                             for k, w in regressed.items()]}, indent=2, default=str))
    elif csv:
        print(to_csv(table), end="")
    else:
        render_perf(common.out(False), table, regressed)
        print(f"raw outputs: {raw_dir}")
    code = report.exit_code(run) | (16 if regressed else 0)
    if code:
        raise Exit(code=code)
