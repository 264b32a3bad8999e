"""`inv report`: the fleet on one self-contained HTML page (rkdeploy.fleet_page)."""
from __future__ import annotations

from pathlib import Path

from .. import report
from ..check import check_job, to_json
from ..fleet import FAILED, OK, BoardResult, FleetRun, classify
from ..fleet_page import build, documents, write
from ..history import history_dir
from ..models import list_job
from ..policy import Target
from ..settings import state_dir
from ..versions import release_of
from . import common
from .common import task
from .models import list_json
from .perf import _check_baseline

REPORT_HELP = {
    **common.help_for("host", "group", "all", "inventory", "parallel", "fail-percent", "accept-new-host-keys",
                      "model-dir"),
    "out": "the HTML file to write (default fleet.html)",
    "from": "build from saved --json documents of check, models.list and perf in this directory (no SSH)",
    "perf": "an `inv perf --json` document to show (default: the newest saved perf run)",
    "baseline": "an earlier `inv perf --json` output: mark runs slower by more than --threshold",
    "threshold": "regression threshold in percent (default 10)",
    "sdk": "the SDK release the fleet should run (default: rkdeploy.sdk)",
    "history": "directory of saved runs to chart (default: <state_dir>/history)",
}


def _both_job(target: Target, model_dir):
    """check's job and models.list's job on one session: one connection per board."""
    check, models = check_job(target), list_job(model_dir)

    def job(session) -> BoardResult:
        checked = check(session)
        try:
            listed = models(session)
        except Exception as e:  # noqa: BLE001 - the check result stands; the model list says what failed
            status, message = classify(e, session.board)
            listed = BoardResult(session.board.name, status if status != OK else FAILED, error=message)
        return BoardResult(session.board.name, OK, data=(checked, listed))
    return job


def _split(run: FleetRun) -> tuple[FleetRun, FleetRun]:
    """The combined run as check's and models.list's runs (a board that failed before either: failed in both)."""
    checks, lists = FleetRun(retry_file=run.retry_file), FleetRun(retry_file=run.retry_file)
    for r in run.results:
        if isinstance(r.data, tuple):
            checked, listed = r.data
            for part in (checked, listed):
                part.seconds, part.commands = r.seconds, r.commands
            checks.results.append(checked)
            lists.results.append(listed)
        else:
            checks.results.append(r)
            lists.results.append(r)
    return checks, lists


@task(name="report", help=REPORT_HELP)
def fleet_report(c, host=None, group=None, all=False, inventory=None, parallel=None, fail_percent=None,
                 accept_new_host_keys=False,
                 model_dir=None, out="fleet.html", from_=None, perf=None, baseline=None, threshold=10, sdk=None,
                 history=None):
    """Write the fleet on one HTML page: version matrix, deployed models, performance charts, history.

    A fresh run reads every selected board once (check and models.list, the tasks' own jobs); perf results
    come from saved runs (`inv perf` keeps each under the state directory) or --perf FILE. With --from DIR it
    reads saved `--json` documents instead and contacts no board. The file needs no network to open: styles
    and charts (SVG, drawn by matplotlib) are inside it, and it has no script.
    Exit code: 0 written; 1 bad input (nothing to show, an unreadable --baseline).
    """
    for name, path in (("--perf", perf), ("--baseline", baseline)):
        if path and not Path(path).is_file():
            raise common.fail(f"{name} {path}: no such file")
    if baseline:
        _check_baseline(baseline)           # an earlier `inv perf --json` output, or exit 1 before any board
    if from_ and not Path(from_).is_dir():
        raise common.fail(f"--from {from_}: not a directory")
    saved = Path(history).expanduser() if history else history_dir(state_dir(c.config))
    fresh = None
    if not from_:
        if not (host or group or all):
            raise common.fail("which boards? pass --host, --group or --all (or --from DIR for saved documents)")
        inv, boards = common.selection(c, inventory, host, group, all)
        settings = common.settings(c, inv, accept_new_host_keys, False)
        sdk = sdk or c.config.rkdeploy.get("sdk")
        if sdk and not release_of(sdk):
            raise common.fail(f"--sdk {sdk!r} is not a release number like 2.3.2")
        toolkit_info, toolkit_release = common.toolkit(c)
        target = Target(sdk=release_of(sdk), toolkit=toolkit_release)
        run = common.run(c, inv, boards, _both_job(target, model_dir), settings, "report", parallel, fail_percent)
        checks, lists = _split(run)
        fresh = {"check": to_json(checks, target, toolkit_info), "models.list": list_json(lists)}
    docs = documents(from_dir=Path(from_) if from_ else None, fresh=fresh, perf_file=Path(perf) if perf else None,
                     history_dir=saved, baseline=Path(baseline) if baseline else None)
    if not docs.current:
        raise common.fail(f"--from {from_}: no check, models.list or perf document (*.json with a task key) in it")
    page = build(docs, threshold=float(threshold))
    try:
        path = write(Path(out).expanduser(), page)
    except OSError as e:
        raise common.fail(f"cannot write {out}: {e.strerror or e}") from None
    shown = ", ".join(docs.current) or "nothing"
    common.say(f"Fleet report: {path.resolve()} ({shown}; open it in any browser, e.g. xdg-open {path})", err=False)
    if fresh:
        report.recap(common.out(False), checks)
