"""`inv perf`, `inv perf.parse` and `inv perf.setup`."""
from __future__ import annotations

import json as jsonlib
import time
from pathlib import Path

from .. import history, report
from ..diagnose import diagnose
from ..perf import AdbServer, PerfError, PerfRun, isolation, perf_job
from ..perf_parse import parse_memory, parse_perf
from ..perf_report import regressions, render_perf, rows, to_csv
from ..settings import state_dir
from ..toolkit import ToolkitError, ensure_env, env_key, pinned, read_toolkit, toolkit_adb
from . import common
from .common import SELECT_HELP, task
from .perf_onboard import ONBOARD_HELP, run_onboard


PERF_HELP = {**common.help_for("host", "group", "all", "inventory", "json", "parallel", "fail-percent",
                               "accept-new-host-keys"),
             "model": "one or more .rknn files, comma-separated",
             "force": "run even where the toolkit and the board's server/runtime versions differ",
             "fix-freq": "fix the board's clocks (PC-driven: eval_perf's, default on; --on-board: off unless given); "
                         "rkdeploy restores the governors after",
             "no-fix-freq": "leave the board's clocks alone",
             "perf-debug": "per-layer table and operator ranking (slower, 'may be worse than actual')",
             "csv": "print CSV on stdout",
             "baseline": "an earlier `inv perf --json` output: mark runs slower by more than --threshold",
             "threshold": "regression threshold in percent (default 10)",
             "timeout": "seconds one toolkit run (--on-board: one board's silence) may take (default 300)",
             **ONBOARD_HELP}


@task(name="run", default=True, help=PERF_HELP, optional=["fix_freq"])
def perf_run(c, model=None, host=None, group=None, all=False, inventory=None, force=False, fix_freq=None,
             no_fix_freq=False, perf_debug=False, json=False, csv=False, baseline=None, threshold=10, timeout=300,
             parallel=None, fail_percent=None, accept_new_host_keys=False, on_board=False, name=None, threads="1",
             warmup=3, runs=20, duration=0.0, model_dir=None):
    """eval_perf / eval_memory of each model on each selected board, driven from the PC, in one table.

    Network adb boards (IP:PORT) run in parallel, each toolkit run in its own unprivileged network namespace
    (rkdeploy.perf); USB boards, or a PC without user namespaces, one at a time.

    Exit code: 0 all ran; 8 a board failed (preflight or toolkit); 4 unreachable; 16 a regression
    against --baseline; 1 bad input. --on-board: benchmark on the boards themselves with their lite2 (over SSH).
    """

    if isinstance(fix_freq, str):           # --fix-freq takes an optional value (so that it can default to None)
        fix_freq = fix_freq.strip().lower() not in ("false", "no", "0", "off")
    if on_board:
        return run_onboard(c, model=model, name=name, host=host, group=group, all=all, inventory=inventory,
                           fix_freq=bool(fix_freq) and not no_fix_freq, json=json, csv=csv, baseline=baseline,
                           threshold=threshold, timeout=timeout, accept_new_host_keys=accept_new_host_keys,
                           threads=threads, warmup=warmup, runs=runs, duration=duration, parallel=parallel,
                           model_dir=model_dir)
    if not model:
        raise common.fail("which model? --model a.rknn[,b.rknn] (or --on-board --name NAME for a deployed one)")
    fix_freq = not no_fix_freq if fix_freq is None else bool(fix_freq) and not no_fix_freq

    models = [common.model_or_fail(m) for m in model.split(",") if m]
    python = common.toolkit_python_or_fail(c)
    try:
        tk = read_toolkit(python)
        adb = toolkit_adb(python)
    except ToolkitError as e:
        raise common.fail(str(e)) from None
    inv, boards = common.selection(c, inventory, host, group, all)
    if baseline:
        _check_baseline(baseline)

    raw_dir = state_dir(c.config) / "perf" / time.strftime("%Y%m%d-%H%M%S")
    server = AdbServer(adb)      # this run's own adb server (private port), killed at the end
    try:
        isolation()              # tried once, before the boards' threads
        server.start()
        job = perf_job(models, python=python, toolkit_release=tk.release, adb=server, force=force,
                       fix_freq=fix_freq, perf_debug=perf_debug, timeout=float(timeout), raw_dir=raw_dir)
        run = common.run(c, inv, boards, job, common.settings(c, inv, accept_new_host_keys, False), "perf",
                         parallel, fail_percent)
    except PerfError as e:
        raise common.fail(str(e)) from None
    finally:
        server.close()
    runs = [p for r in run.results for p in (r.data or [])]
    table = rows(runs)
    lost = [r for r in run.results if r.status in ("unreachable", "failed", "skipped") and not r.data]
    for r in lost:               # a board without a run of its own (unreachable, its job raised, not started)
        table.append({"board": r.board, "model": "—", "ok": False, "time_ms": None, "fps": None,
                      "memory_total_mib": None, "weight_mib": None, "top_operators": "", "error": r.error,
                      "diagnosis": None})
    try:
        regressed = regressions(table, Path(baseline), float(threshold)) if baseline else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:     # read fine before the run
        common.say(f"rkdeploy: --baseline {baseline} not compared: {type(e).__name__}: {e}")
        regressed = {}
    code = report.exit_code(run, regressed=bool(regressed))
    doc = report.envelope("perf", {
        "toolkit": tk.version, "raw_dir": str(raw_dir), "isolation": isolation(), "results": table,
        "runs": [p.to_dict() for p in runs],
        "regressions": [{"board": b, "model": m, "why": w} for (b, m), w in regressed.items()]}, run, code=code)
    history.save(state_dir(c.config), doc)                  # for `inv report`'s history charts
    if json:
        report.print_json(doc, run)
    elif csv:
        print(to_csv(table), end="")
        report.recap(common.out(True), run)
    else:
        console = common.out(False)
        render_perf(console, table, regressed)
        report.recap(console, run)
        common.say(f"raw outputs: {raw_dir}", err=False)
    report.finish(code)


def _check_baseline(path: str) -> None:
    """--baseline must be an earlier `inv perf --json` output: refused before any board is contacted (exit 1)."""
    try:
        results = jsonlib.loads(Path(path).read_text())["results"]
        if not all(isinstance(r, dict) and "board" in r and "model" in r for r in results):
            raise ValueError("a result without board and model")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise common.fail(f"--baseline {path}: not an earlier `inv perf --json` output "
                          f"({type(e).__name__}: {e})") from None


@task(name="parse", positional=["path"], help={"path": "a saved console log of eval_perf/eval_memory (either generation)",
                                               "json": SELECT_HELP["json"]})
def perf_parse_task(c, path, json=False):
    """Turn a saved eval_perf / eval_memory log into the same report (and name known failures in it)."""

    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        raise common.fail(f"{path}: {e.strerror}") from None
    run = PerfRun("(log)", Path(path).name, perf=parse_perf(text), memory=parse_memory(text), diagnoses=diagnose(text))
    run.ok = bool(run.perf or run.memory)
    if not run.ok and not run.diagnoses:
        raise common.fail(f"{path}: no eval_perf or eval_memory output and no known failure in it")
    if json:
        report.print_json(report.envelope("perf.parse", run.to_dict()))
    else:
        render_perf(common.out(False), rows([run]))


@task(name="setup", help={"version": "rknn-toolkit2 release (default 2.3.2; tested sets: rkdeploy/toolkit_constraints)",
                          "path": "where to create the virtualenv (default ~/.cache/rkdeploy/toolkit-VERSION-HASH)",
                          "print-python": "print only the toolkit's python on stdout (for scripts)"})
def perf_setup(c, version="2.3.2", path=None, print_python=False):
    """Create rknn-toolkit2's own virtualenv from the tested, pinned package set (CPU torch; ~1.3 GB, ~40 s).

    Reused as it is when it already holds the same set (keyed by the hash of the constraints file).
    """

    try:
        venv = Path(path).expanduser() if path else state_dir(c.config) / env_key(version)
        result = ensure_env(version, venv)
    except ToolkitError as e:
        raise common.fail(str(e)) from None
    if print_python:
        print(result.python)
        return
    how = "already there" if result.reused else f"installed in {result.seconds:.0f} s"
    print(f"rknn-toolkit2 {version} in {result.venv} ({result.megabytes:.0f} MB, {how}), with: "
          f"{', '.join(pinned(version))}.\n"
          f"Set in invoke.yaml:  perf:\n  toolkit_python: {result.python}\n"
          f"or export RKDEPLOY_TOOLKIT_PYTHON={result.python}")
