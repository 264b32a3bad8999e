"""The task collection: thin Invoke tasks that parse options, call the library and present results.

`tasks.py` (for `inv`) and the `rkdeploy` console command serve this same collection.
"""
from __future__ import annotations

import getpass
import json as jsonlib
import sys
from pathlib import Path

from invoke import Collection, Exit, Program, task
from rich.console import Console

from . import __version__
from .check import EXIT_USAGE, check_job, exit_code, to_json
from .check_report import render_check
from .deploy import DeployError, deploy_job, model_name
from .fleet import exit_code as fleet_exit_code
from .fleet import run_fleet
from .inventory import InventoryError, load
from .models import list_job, remove_job, rollback_job
from .models_report import recap, render_deploy, render_model, render_model_list
from .bundle import BundleError, import_sdk, list_versions, load_bundle, verify
from .policy import Target
from .provision import provision_job, rollback_job as provision_rollback_job, server_job
from .rknn_model import ModelError, read_model
from .settings import DEFAULTS, ssh_settings, state_dir
from .toolkit import ToolkitError, read_toolkit, toolkit_python
from .versions import release_of

SELECT_HELP = {
    "host": "board names or globs, comma-separated (or @FILE from a retry list)",
    "group": "an inventory group (comma-separated for several)",
    "all": "every board of the inventory",
    "inventory": "inventory file (default: rkdeploy.inventory in invoke.yaml)",
    "parallel": "boards worked on at once",
    "fail-percent": "stop starting new boards once more than this percentage failed",
    "accept-new-host-keys": "record unknown host keys in the known_hosts file (changed keys stay refused)",
    "prompt-for-sudo-password": "ask once for the boards' sudo password (never echoed or logged)",
    "json": "print machine-readable JSON on stdout instead of the table",
}


def _fail(message: str, code: int = EXIT_USAGE) -> Exit:
    return Exit(f"rkdeploy: {message}", code=code)


def _selection(c, inventory, host, group, all):
    try:
        inv = load(inventory or c.config.rkdeploy.inventory)
        return inv, inv.select(hosts=host, group=group, all=all)
    except (InventoryError, OSError) as e:
        raise _fail(str(e)) from None


def _settings(c, inv, accept_new_host_keys, prompt_for_sudo_password):
    password = None
    if prompt_for_sudo_password:
        if not sys.stdin.isatty():
            raise _fail("--prompt-for-sudo-password needs a terminal to ask on")
        password = getpass.getpass("sudo password for the boards: ")
    return ssh_settings(c.config, inv.settings, accept_new_host_keys=accept_new_host_keys, sudo_password=password)


def _toolkit(c) -> tuple[dict, object]:
    python = toolkit_python(c.config.perf.get("toolkit_python"))
    if not python:
        return {"python": None, "version": None, "note": "not configured (perf.toolkit_python)"}, None
    try:
        tk = read_toolkit(python)
        return {"python": python, "version": tk.version, "note": None}, tk.release
    except ToolkitError as e:
        return {"python": python, "version": None, "note": str(e)}, None


@task(help={**SELECT_HELP, "sdk": "the SDK release the fleet should run (default: rkdeploy.sdk)",
            "bundle": "judge against this SDK bundle's release (as --sdk, but the bundle must exist)"})
def check(c, host=None, group=None, all=False, inventory=None, sdk=None, bundle=None, json=False, parallel=None,
          fail_percent=None, accept_new_host_keys=False, prompt_for_sudo_password=False):
    """Read every selected board and show SoC, arch, driver, server, runtime, lite2 and the PC toolkit side by side.

    Exit code: 0 all match; otherwise bit flags 2 = version mismatch, 4 = unreachable, 8 = failed
    (e.g. a refused host key); 1 = bad input.
    """
    inv, boards = _selection(c, inventory, host, group, all)
    settings = _settings(c, inv, accept_new_host_keys, prompt_for_sudo_password)
    if bundle:
        sdk = _bundle(c, bundle).version
    sdk = sdk or c.config.rkdeploy.get("sdk")
    if sdk and not release_of(sdk):
        raise _fail(f"--sdk {sdk!r} is not a release number like 2.3.2")
    toolkit_info, toolkit_release = _toolkit(c)
    target = Target(sdk=release_of(sdk), toolkit=toolkit_release)
    console = _out(json)
    run = _run(c, inv, boards, check_job(target), settings, "check", parallel, fail_percent)
    if json:
        print(jsonlib.dumps(to_json(run, target, toolkit_info), indent=2, default=str))
    else:
        note = (f"rknn-toolkit2 {toolkit_info['version']} ({toolkit_info['python']})" if toolkit_info["version"]
                else f"rknn-toolkit2 unknown: {toolkit_info['note']}")
        render_check(console, run, target, note)
    code = exit_code(run)
    if code:
        raise Exit(code=code)


def _run(c, inv, boards, job, settings, label, parallel=None, fail_percent=None, transfer_bytes=0):
    return run_fleet(boards, job, settings, label=label,
                     parallel=int(parallel or inv.settings.get("parallel") or c.config.rkdeploy.parallel),
                     fail_percent=float(fail_percent) if fail_percent is not None else None,
                     console=Console(stderr=True), retry_dir=state_dir(c.config), transfer_bytes=transfer_bytes)


def _out(json: bool) -> Console:
    return Console(stderr=json, width=None if sys.stdout.isatty() else 140)


def _read_model(path: str):
    try:
        return read_model(path)
    except ModelError as e:
        raise _fail(str(e)) from None


DEPLOY_HELP = {**SELECT_HELP, "name": "name on the boards (default: the file name without .rknn)",
               "force": "deploy even where validation refuses (loudly reported)",
               "check": "show what would be sent where; change nothing",
               "keep": "versions kept per model on each board (default 3)",
               "model-dir": "model directory on the boards (default: board var model_dir, else /opt/rkdeploy/models)",
               "lock-wait": "seconds to wait for another run's lock on a board (default 60)"}


@task(positional=["model"], help={"model": "the .rknn file", **DEPLOY_HELP})
def deploy(c, model, host=None, group=None, all=False, inventory=None, name=None, force=False, check=False, keep=3,
           model_dir=None, lock_wait=60, json=False, parallel=None, fail_percent=None, accept_new_host_keys=False,
           prompt_for_sudo_password=False):
    """Validate a model against each selected board (SoC, runtime version, space) and push it atomically.

    The previous versions are kept (--keep) for `inv models.rollback`; <model-dir>/<name>/current.rknn is
    the stable path for applications. Exit code: 0 done; bit flags 4 unreachable, 8 refused/failed; 1 bad input.
    """
    rknn = _read_model(model)                     # a bad file is refused before any connection
    try:
        final_name = model_name(rknn, name)
    except DeployError as e:
        raise _fail(str(e)) from None
    inv, boards = _selection(c, inventory, host, group, all)
    settings = _settings(c, inv, accept_new_host_keys, prompt_for_sudo_password)
    job = deploy_job(rknn, name, model_dir=model_dir, keep=max(1, int(keep)), force=force, check_only=check,
                     lock_wait=float(lock_wait))
    run = _run(c, inv, boards, job, settings, "deploy", parallel, fail_percent,
               transfer_bytes=0 if check else rknn.size * len(boards))
    if json:
        print(jsonlib.dumps({"model": rknn.__dict__ | {"metadata": None}, "name": final_name, "check": check,
                             "boards": [{"board": r.board, "status": r.status, "error": r.error or None,
                                         "bytes_sent": r.bytes_sent, "remote_commands": r.commands,
                                         "seconds": round(r.seconds, 3),
                                         "plan": r.data.to_dict() if r.data else None} for r in run.results],
                             "exit_code": fleet_exit_code(run)}, indent=2, default=str))
    else:
        render_deploy(_out(json), run, rknn, final_name, check)
    for r in run.results:
        if r.data and r.data.forced:
            Console(stderr=True).print(f"[bold red]WARNING: {r.board}: deployed with --force despite: "
                                       f"{'; '.join(r.data.problems)}")
    if fleet_exit_code(run):
        raise Exit(code=fleet_exit_code(run))


@task(positional=["model"], help={"model": "the .rknn file", "json": SELECT_HELP["json"]})
def inspect(c, model, json=False):
    """Show what a .rknn file is: format, target platform, building toolkit, inputs/outputs, size, sha256."""
    rknn = _read_model(model)
    if json:
        print(jsonlib.dumps(rknn.__dict__, indent=2, default=str))
    else:
        render_model(_out(False), rknn)


def _help(*keys: str, **extra: str) -> dict:
    """Help for exactly the options a task has (Invoke refuses help for options that do not exist)."""
    return {**{k: DEPLOY_HELP[k] for k in keys}, **extra}


LIST_HELP = _help("host", "group", "all", "inventory", "model-dir", "json", "parallel", "accept-new-host-keys")
CHANGE_HELP = {**LIST_HELP, "lock-wait": DEPLOY_HELP["lock-wait"], "name": "model name on the boards"}


@task(name="list", help=LIST_HELP)
def list_(c, host=None, group=None, all=False, inventory=None, model_dir=None, json=False, parallel=None,
          accept_new_host_keys=False):
    """Per board: each model's active version, sha, size, toolkit, platform, deployment time, versions kept."""
    inv, boards = _selection(c, inventory, host, group, all)
    settings = _settings(c, inv, accept_new_host_keys, False)
    run = _run(c, inv, boards, list_job(model_dir), settings, "models", parallel)
    if json:
        print(jsonlib.dumps([{"board": r.board, "status": r.status, "error": r.error or None,
                              "models": [m.__dict__ for m in r.data] if r.data else []} for r in run.results],
                            indent=2, default=str))
    else:
        render_model_list(_out(False), run)
    if fleet_exit_code(run):
        raise Exit(code=fleet_exit_code(run))


def _model_change(c, job, label, inventory, host, group, all, parallel, accept_new_host_keys, json):
    inv, boards = _selection(c, inventory, host, group, all)
    run = _run(c, inv, boards, job, _settings(c, inv, accept_new_host_keys, False), label, parallel)
    if json:
        print(jsonlib.dumps([{"board": r.board, "status": r.status, "error": r.error or None, "result": r.data}
                             for r in run.results], indent=2, default=str))
    else:
        console = _out(False)
        for r in run.results:
            console.print(f"{r.board}: {r.status}" + (f" ({r.error})" if r.error else
                                                        f" {r.data}" if r.data else ""))
        recap(console, run)
    if fleet_exit_code(run):
        raise Exit(code=fleet_exit_code(run))


@task(positional=["name"], help=CHANGE_HELP)
def rollback(c, name, host=None, group=None, all=False, inventory=None, model_dir=None, lock_wait=60, json=False,
             parallel=None, accept_new_host_keys=False):
    """Make the version deployed before the active one active again."""
    _model_change(c, rollback_job(name, model_dir, float(lock_wait)), "rollback", inventory, host, group, all,
                  parallel, accept_new_host_keys, json)


@task(positional=["name"], help=CHANGE_HELP)
def remove(c, name, host=None, group=None, all=False, inventory=None, model_dir=None, lock_wait=60, json=False,
           parallel=None, accept_new_host_keys=False):
    """Remove a model and all its kept versions from the boards."""
    _model_change(c, remove_job(name, model_dir, float(lock_wait)), "remove", inventory, host, group, all,
                  parallel, accept_new_host_keys, json)


def _bundles_dir(c) -> Path:
    return Path(str(c.config.rkdeploy.get("bundles_dir") or "bundles")).expanduser()


def _bundle(c, version):
    version = version or c.config.rkdeploy.get("bundle")
    if not version:
        have = ", ".join(list_versions(_bundles_dir(c))) or "none yet (inv bundle.import SDK_PATH)"
        raise _fail(f"which SDK bundle? pass --bundle VERSION (bundles: {have})")
    try:
        return load_bundle(_bundles_dir(c), str(version))
    except BundleError as e:
        raise _fail(str(e)) from None


@task(name="import", positional=["path"], help={
    "path": "an rknn-toolkit2 checkout or SDK release tree (1.5.x or 2.x layout)",
    "python": "Python tags the fleet runs, comma-separated (default: cp311; e.g. 3.8,3.10,3.11 or cp310)"})
def bundle_import(c, path, python="cp311"):
    """Make bundles/<version>/ from an SDK tree: files pinned by sha256, plus an offline lite2 wheelhouse."""
    tags = [t if t.startswith("cp") else "cp" + t.replace(".", "") for t in python.split(",") if t]
    try:
        bundle = import_sdk(Path(path), _bundles_dir(c), tags, log=lambda m: print(m, file=sys.stderr))
    except BundleError as e:
        raise _fail(str(e)) from None
    print(f"bundle {bundle.version} ({bundle.layout} layout): {len(bundle.files)} files, "
          f"lite2 for {', '.join(bundle.wheels) or 'no Python'} → {bundle.root}")


@task(name="list")
def bundle_list(c):
    """The SDK bundles available to provision."""
    for version in list_versions(_bundles_dir(c)):
        b = load_bundle(_bundles_dir(c), version)
        arches = sorted({f.arch for f in b.files if f.arch != "any"})
        print(f"{version:10} {b.layout:8} {'/'.join(arches):14} lite2: {', '.join(b.wheels) or '—'}")


@task(name="verify", help={"bundle": "the bundle's version (default: all)"})
def bundle_verify(c, bundle=None):
    """Check every bundle file against its manifest: a tampered or truncated file is named."""
    versions = [bundle] if bundle else list_versions(_bundles_dir(c))
    bad = 0
    for version in versions:
        problems = verify(_bundle(c, version))
        for p in problems:
            print(f"{version}: {p}")
        bad += len(problems)
        if not problems:
            print(f"{version}: ok")
    if bad:
        raise Exit(code=8)


PROVISION_HELP = {**SELECT_HELP, "bundle": "the SDK bundle to install (default: rkdeploy.bundle)",
                  "check": "print the plan and change nothing", "lock-wait": DEPLOY_HELP["lock-wait"],
                  "persist": "install a systemd unit for rknn_server so that it survives reboots"}


@task(help=PROVISION_HELP)
def provision(c, host=None, group=None, all=False, inventory=None, bundle=None, check=False, lock_wait=60,
              persist=False, json=False, parallel=None, fail_percent=None, accept_new_host_keys=False,
              prompt_for_sudo_password=False):
    """Install librknnrt, rknn_server, scripts, headers and lite2 (offline) from an SDK bundle, restart the server.

    Only what differs (by sha256) is sent; a second run changes nothing. Exit code: 0 done; bit flags
    4 unreachable, 8 failed/refused; 1 bad input.
    """
    sdk = _bundle(c, bundle)
    inv, boards = _selection(c, inventory, host, group, all)
    settings = _settings(c, inv, accept_new_host_keys, prompt_for_sudo_password)
    run = _run(c, inv, boards, provision_job(sdk, check_only=check, lock_wait=float(lock_wait), persist=persist), settings,
               "provision", parallel, fail_percent)
    _report_provision(run, sdk.version, check, json)


def _report_provision(run, version, check, json):
    if json:
        print(jsonlib.dumps({"bundle": version, "check": check, "boards": [
            {"board": r.board, "status": r.status, "error": r.error or None, "bytes_sent": r.bytes_sent,
             "remote_commands": r.commands, "seconds": round(r.seconds, 3),
             "plan": r.data.to_dict() if hasattr(r.data, "to_dict") else r.data} for r in run.results],
            "exit_code": fleet_exit_code(run)}, indent=2, default=str))
    else:
        from .provision_report import render_provision
        render_provision(_out(False), run, version, check)
    if fleet_exit_code(run):
        raise Exit(code=fleet_exit_code(run))


@task(name="rollback", help={**{k: SELECT_HELP[k] for k in ("host", "group", "all", "inventory", "json",
                                                              "accept-new-host-keys")},
                             "lock-wait": DEPLOY_HELP["lock-wait"]})
def provision_rollback(c, host=None, group=None, all=False, inventory=None, lock_wait=60, json=False,
                       accept_new_host_keys=False):
    """Put back the runtime/server files the last provision replaced (and remove what it added)."""
    inv, boards = _selection(c, inventory, host, group, all)
    run = _run(c, inv, boards, provision_rollback_job(lock_wait=float(lock_wait)),
               _settings(c, inv, accept_new_host_keys, False), "rollback")
    _report_provision(run, None, False, json)


def _server_task(action):
    def body(c, host=None, group=None, all=False, inventory=None, json=False, lock_wait=60,
             accept_new_host_keys=False):
        inv, boards = _selection(c, inventory, host, group, all)
        run = _run(c, inv, boards, server_job(action, lock_wait=float(lock_wait)),
                   _settings(c, inv, accept_new_host_keys, False), f"server {action}")
        _report_provision(run, None, False, json)
    body.__doc__ = {"start": "Start rknn_server the board's way (systemd unit or start_rknn.sh).",
                    "stop": "Stop rknn_server (and its start_rknn.sh loop).",
                    "restart": "Restart rknn_server the board's way.",
                    "status": "Whether rknn_server runs, its PID, version and how it is managed."}[action]
    body.__name__ = action
    return task(body, name=action, help={**{k: SELECT_HELP[k] for k in ("host", "group", "all", "inventory", "json",
                                                                        "accept-new-host-keys")},
                                         "lock-wait": DEPLOY_HELP["lock-wait"]})


PERF_HELP = {**{k: SELECT_HELP[k] for k in ("host", "group", "all", "inventory", "json", "accept-new-host-keys")},
             "model": "one or more .rknn files, comma-separated",
             "force": "run even where the toolkit and the board's server/runtime versions differ",
             "fix-freq": "let eval_perf fix the board's clocks (default on; rkdeploy restores the governors after)",
             "perf-debug": "per-layer table and operator ranking (slower, 'may be worse than actual')",
             "csv": "print CSV on stdout",
             "baseline": "an earlier `inv perf --json` output: mark runs slower by more than --threshold",
             "threshold": "regression threshold in percent (default 10)",
             "timeout": "seconds one toolkit run may take (default 300)"}


def _toolkit_python_or_fail(c) -> str:
    python = toolkit_python(c.config.perf.get("toolkit_python"))
    if not python:
        raise _fail("no rknn-toolkit2 environment: create one with `inv perf.setup --version 2.3.2` (a virtualenv "
                    "of its own, ~3 GB with torch), or point perf.toolkit_python in invoke.yaml (or "
                    "RKDEPLOY_TOOLKIT_PYTHON) at the python of an existing one")
    return python


@task(name="run", default=True, help=PERF_HELP)
def perf_run(c, model, host=None, group=None, all=False, inventory=None, force=False, fix_freq=True,
             perf_debug=False, json=False, csv=False, baseline=None, threshold=10, timeout=300,
             accept_new_host_keys=False):
    """eval_perf / eval_memory of each model on each selected board, driven from the PC, in one table.

    Exit code: 0 all ran; 8 a board failed (preflight or toolkit); 4 unreachable; 16 a regression
    against --baseline; 1 bad input.
    """
    from .perf import PerfError, perf_job, toolkit_adb
    from .perf_report import regressions, render_perf, rows, to_csv

    models = [_read_model(m) for m in model.split(",") if m]
    python = _toolkit_python_or_fail(c)
    try:
        tk = read_toolkit(python)
        adb = toolkit_adb(python)
    except (ToolkitError, PerfError) as e:
        raise _fail(str(e)) from None
    inv, boards = _selection(c, inventory, host, group, all)
    import time as _time

    raw_dir = state_dir(c.config) / "perf" / _time.strftime("%Y%m%d-%H%M%S")
    job = perf_job(models, python=python, toolkit_release=tk.release, adb=adb, force=force, fix_freq=fix_freq,
                   perf_debug=perf_debug, timeout=float(timeout), raw_dir=raw_dir)
    run = _run(c, inv, boards, job, _settings(c, inv, accept_new_host_keys, False), "perf", None)
    runs = [p for r in run.results for p in (r.data or [])]
    table = rows(runs)
    unreachable = [r for r in run.results if r.status == "unreachable"]
    for r in unreachable:
        table.append({"board": r.board, "model": "—", "ok": False, "time_ms": None, "fps": None,
                      "memory_total_mib": None, "weight_mib": None, "top_operators": "", "error": r.error,
                      "diagnosis": None})
    regressed = regressions(table, Path(baseline), float(threshold)) if baseline else {}
    if json:
        print(jsonlib.dumps({"toolkit": tk.version, "raw_dir": str(raw_dir), "results": table,
                             "runs": [p.to_dict() for p in runs],
                             "regressions": [{"board": b, "model": m, "why": w} for (b, m), w in regressed.items()]},
                            indent=2, default=str))
    elif csv:
        print(to_csv(table), end="")
    else:
        render_perf(_out(False), table, regressed)
        print(f"raw outputs: {raw_dir}")
    code = fleet_exit_code(run) | (16 if regressed else 0)
    if code:
        raise Exit(code=code)


@task(name="parse", positional=["path"], help={"path": "a saved console log of eval_perf/eval_memory (either generation)",
                                               "json": SELECT_HELP["json"]})
def perf_parse_task(c, path, json=False):
    """Turn a saved eval_perf / eval_memory log into the same report (and name known failures in it)."""
    from .diagnose import diagnose
    from .perf import PerfRun
    from .perf_parse import parse_memory, parse_perf
    from .perf_report import render_perf, rows

    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        raise _fail(f"{path}: {e.strerror}") from None
    run = PerfRun("(log)", Path(path).name, perf=parse_perf(text), memory=parse_memory(text), diagnoses=diagnose(text))
    run.ok = bool(run.perf or run.memory)
    if not run.ok and not run.diagnoses:
        raise _fail(f"{path}: no eval_perf or eval_memory output and no known failure in it")
    if json:
        print(jsonlib.dumps(run.to_dict(), indent=2, default=str))
    else:
        render_perf(_out(False), rows([run]))


@task(name="setup", help={"version": "rknn-toolkit2 release (default 2.3.2)",
                          "path": "where to create the virtualenv (default ~/.cache/rkdeploy/toolkit-VERSION)"})
def perf_setup(c, version="2.3.2", path=None):
    """Create rknn-toolkit2's own virtualenv (it pins old torch/numpy; ~3 GB, several minutes)."""
    import subprocess as sp
    import time as _time

    venv = Path(path or state_dir(c.config) / f"toolkit-{version}").expanduser()
    started = _time.monotonic()
    sp.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = sp.run([str(venv / "bin/python"), "-m", "pip", "install", f"rknn-toolkit2=={version}"])
    if proc.returncode != 0:
        raise _fail(f"pip could not install rknn-toolkit2=={version} into {venv}")
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file())
    print(f"rknn-toolkit2 {version} in {venv} ({size / 2 ** 30:.1f} GiB, {_time.monotonic() - started:.0f} s).\n"
          f"Set in invoke.yaml:  perf:\n  toolkit_python: {venv / 'bin/python'}")


def build_namespace() -> Collection:
    ns = Collection(check, deploy, provision, provision_rollback)
    ns.add_collection(Collection("models", inspect, list_, rollback, remove))
    ns.add_collection(Collection("bundle", bundle_import, bundle_list, bundle_verify))
    ns.add_collection(Collection("server", *[_server_task(a) for a in ("start", "stop", "restart", "status")]))
    ns.add_collection(Collection("perf", perf_run, perf_parse_task, perf_setup))
    ns.configure(DEFAULTS)
    return ns


namespace = build_namespace()


def main() -> None:
    Program(name="rkdeploy", binary="rkdeploy", version=__version__, namespace=namespace).run()
