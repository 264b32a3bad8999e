"""The task collection that `tasks.py` (for `inv`) and the `rkdeploy` console command both serve."""
from __future__ import annotations

import os
import sys
import traceback

from invoke import Collection, Program

from . import __version__, report
from .settings import DEFAULTS
from .tasks import check, convert, fleet_report, models, perf, provision


def build_namespace() -> Collection:
    ns = Collection(check.check, models.deploy, provision.provision, provision.provision_rollback,
                    fleet_report.fleet_report)
    ns.add_task(convert.convert_task, name="convert")
    ns.add_collection(Collection("models", models.inspect, models.list_, models.rollback, models.remove))
    ns.add_collection(Collection("bundle", provision.bundle_import, provision.bundle_list, provision.bundle_verify))
    ns.add_collection(Collection("server", *[provision.server_task(a) for a in ("start", "stop", "restart", "status")]))
    ns.add_collection(Collection("perf", perf.perf_run, perf.perf_parse_task, perf.perf_setup))
    ns.configure(DEFAULTS)
    return ns


namespace = build_namespace()


def main() -> None:
    """The `rkdeploy` console command. It leaves with os._exit once its output is flushed: tearing down the
    ~400 modules a fleet run imports (paramiko, fabric, rich) takes ~60 ms, a fifth of the start-up cost,
    for nothing: every connection is closed and every file written by then."""
    try:
        Program(name="rkdeploy", binary="rkdeploy", version=__version__, namespace=namespace).run()
        code = 0
    except SystemExit as e:
        code = e.code
    except Exception:  # noqa: BLE001 - a bug: its traceback may quote a board's text, so it is cleaned too
        print(report.clean(traceback.format_exc(), multiline=True), file=sys.stderr, end="")
        code = 1
    if isinstance(code, str):
        print(report.clean(code, multiline=True), file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
