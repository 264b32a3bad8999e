"""`inv deploy` and `inv models.*`."""
from __future__ import annotations

from .. import remote, report
from ..convert import read_recipe
from ..convert_report import render_recipe
from ..deploy import DeployError, deploy_job, model_name
from ..models import list_job, remove_job, rollback_job
from ..models_report import render_deploy, render_forced, render_model, render_model_change, render_model_list
from . import common
from .common import OPTION_HELP, SELECT_HELP, task


DEPLOY_HELP = {**SELECT_HELP, "name": "name on the boards (default: the file name without .rknn)",
               "force": "deploy even where validation refuses (loudly reported)",
               "check": "show what would be sent where; change nothing",
               "keep": "versions kept per model on each board (default 3)",
               "model-dir": OPTION_HELP["model-dir"], "lock-wait": OPTION_HELP["lock-wait"]}


@task(positional=["model"], help={"model": "the .rknn file", **DEPLOY_HELP})
def deploy(c, model, host=None, group=None, all=False, inventory=None, name=None, force=False, check=False, keep=3,
           model_dir=None, lock_wait=60, json=False, parallel=None, fail_percent=None, accept_new_host_keys=False,
           prompt_for_sudo_password=False):
    """Validate a model against each selected board (SoC, runtime version, space) and push it atomically.

    The previous versions are kept (--keep) for `inv models.rollback`; <model-dir>/<name>/current.rknn is
    the stable path for applications. Exit code: 0 done; bit flags 4 unreachable, 8 refused/failed; 1 bad input.
    """
    rknn = common.model_or_fail(model)                     # a bad file is refused before any connection
    try:
        final_name = model_name(rknn, name)
    except DeployError as e:
        raise common.fail(str(e)) from None
    _check_model_dir(model_dir)
    inv, boards = common.selection(c, inventory, host, group, all)
    settings = common.settings(c, inv, accept_new_host_keys, prompt_for_sudo_password)
    job = deploy_job(rknn, name, model_dir=model_dir, keep=max(1, int(keep)), force=force, check_only=check,
                     lock_wait=float(lock_wait))
    run = common.run(c, inv, boards, job, settings, "deploy", parallel, fail_percent,
               transfer_bytes=0 if check else rknn.size * len(boards))
    if json:
        report.print_json(report.envelope("deploy", {
            "model": rknn.__dict__ | {"metadata": None}, "name": final_name, "check": check,
            "boards": [{"board": r.board, "status": r.status, "error": r.error or None,
                        "bytes_sent": r.bytes_sent, "remote_commands": r.commands, "seconds": round(r.seconds, 3),
                        "plan": r.data.to_dict() if r.data else None} for r in run.results]}, run), run)
    else:
        render_deploy(common.out(json), run, rknn, final_name, check)
    render_forced(common.out(True), run)
    report.finish(report.exit_code(run))


@task(positional=["model"], help={"model": "the .rknn file", "json": SELECT_HELP["json"]})
def inspect(c, model, json=False):
    """Show what a .rknn file is: format, target platform and the SoCs it runs on, building toolkit and compiler,
    each input and output (name, shape, dtype, layout, quantization), custom ops, size, sha256."""
    rknn = common.model_or_fail(model)
    recipe = read_recipe(model)              # <model>.rknn.recipe.json from `inv convert`, when there is one
    if json:
        report.print_json(report.envelope("models.inspect", rknn.to_dict() | {"recipe": recipe}))
    else:
        render_model(common.out(False), rknn)
        if recipe is not None:
            render_recipe(common.out(False), recipe)


LIST_HELP = common.help_for("host", "group", "all", "inventory", "model-dir", "json", "parallel", "fail-percent",
                            "accept-new-host-keys")
CHANGE_HELP = {**LIST_HELP, "lock-wait": OPTION_HELP["lock-wait"], "name": "model name on the boards"}


@task(name="list", help=LIST_HELP)
def list_(c, host=None, group=None, all=False, inventory=None, model_dir=None, json=False, parallel=None,
          fail_percent=None, accept_new_host_keys=False):
    """Per board: each model's active version, sha, size, toolkit, platform, deployment time, versions kept."""
    inv, boards = common.selection(c, inventory, host, group, all)
    settings = common.settings(c, inv, accept_new_host_keys, False)
    run = common.run(c, inv, boards, list_job(model_dir), settings, "models", parallel, fail_percent)
    if json:
        report.print_json(list_json(run), run)
    else:
        render_model_list(common.out(False), run)
    report.finish(report.exit_code(run))


def list_json(run) -> dict:
    """models.list's JSON document (also what `inv report` reads)."""
    return report.envelope("models.list", {"boards": [
        {"board": r.board, "status": r.status, "error": r.error or None,
         "models": [m.__dict__ for m in r.data] if r.data else []} for r in run.results]}, run)


def _check_model_dir(model_dir):
    """A bad --model-dir is refused before any connection (exit 1)."""
    if model_dir is not None:
        try:
            remote.model_dir(model_dir, "--model-dir")
        except remote.RemoteValueError as e:
            raise common.fail(str(e)) from None


def _change_job(make, name, model_dir, lock_wait):
    """rollback/remove's job; a bad name or --model-dir is refused before any connection (exit 1)."""
    _check_model_dir(model_dir)
    try:
        return make(name, model_dir, float(lock_wait))
    except DeployError as e:
        raise common.fail(str(e)) from None


def _model_change(c, job, label, inventory, host, group, all, parallel, fail_percent, accept_new_host_keys, json):
    inv, boards = common.selection(c, inventory, host, group, all)
    run = common.run(c, inv, boards, job, common.settings(c, inv, accept_new_host_keys, False), label, parallel,
                     fail_percent)
    if json:
        report.print_json(report.envelope(f"models.{label}", {"boards": [
            {"board": r.board, "status": r.status, "error": r.error or None, "result": r.data}
            for r in run.results]}, run), run)
    else:
        render_model_change(common.out(False), run)
    report.finish(report.exit_code(run))


@task(positional=["name"], help=CHANGE_HELP)
def rollback(c, name, host=None, group=None, all=False, inventory=None, model_dir=None, lock_wait=60, json=False,
             parallel=None, fail_percent=None, accept_new_host_keys=False):
    """Make the version deployed before the active one active again."""
    _model_change(c, _change_job(rollback_job, name, model_dir, lock_wait), "rollback", inventory, host, group, all,
                  parallel, fail_percent, accept_new_host_keys, json)


@task(positional=["name"], help=CHANGE_HELP)
def remove(c, name, host=None, group=None, all=False, inventory=None, model_dir=None, lock_wait=60, json=False,
           parallel=None, fail_percent=None, accept_new_host_keys=False):
    """Remove a model and all its kept versions from the boards."""
    _model_change(c, _change_job(remove_job, name, model_dir, lock_wait), "remove", inventory, host, group, all,
                  parallel, fail_percent, accept_new_host_keys, json)


