"""`inv bundle.*`, `inv provision`, `inv rollback` and `inv server.*`."""
from __future__ import annotations

import shlex
from pathlib import Path

from .. import report
from ..bundle import (BundleError, describe_parts, import_sdk, list_versions, load_bundle, parse_runtime_options,
                      verify)
from ..gather import python_tag_job
from ..provision import provision_job, rollback_job as provision_rollback_job
from ..server import server_job
from ..provision_report import render_provision
from . import common
from .common import OPTION_HELP, SELECT_HELP, task


@task(name="import", positional=["path"], iterable=["runtime"], help={
    "path": "an SDK checkout: rknpu2 (1.4–1.5) or rknn-toolkit2 (1.6 and later)",
    "lite2-from": "the rknn-toolkit2 checkout (or a folder of lite2 wheels) of the same release: for 1.4–1.5, "
                  "whose rknpu2 repository has no lite2 wheels",
    "runtime": "ARCH=PATH: Rockchip's runtime for an architecture the tree lacks (aarch64, armhf or "
               "armhf-uclibc; repeatable or comma-separated); its version string must name the tree's release",
    "pip-options": "extra options for pip download of the lite2 dependencies (e.g. '--index-url URL')",
    "python": "Python tags the fleet runs, comma-separated (default: cp311; e.g. 3.8,3.10,3.11 or cp310), "
              "or 'fleet': read them from every board of the inventory over SSH",
    "inventory": SELECT_HELP["inventory"], "accept-new-host-keys": SELECT_HELP["accept-new-host-keys"]})
def bundle_import(c, path, python="cp311", lite2_from=None, runtime=None, pip_options="", inventory=None,
                  accept_new_host_keys=False):
    """Make bundles/<version>/ from an SDK tree: files pinned by sha256, plus an offline lite2 wheelhouse.

    Prints per architecture what the tree has and what it lacks (docs/sdk-releases.md)."""
    try:
        runtimes = parse_runtime_options(runtime)
    except BundleError as e:
        raise common.fail(str(e)) from None
    if python == "fleet":
        tags = _fleet_python_tags(c, inventory, accept_new_host_keys)
    else:
        tags = [t if t.startswith("cp") else "cp" + t.replace(".", "") for t in python.split(",") if t]
    try:
        bundle = import_sdk(Path(path), common.bundles_dir(c), tags, log=common.say,
                            lite2_from=Path(lite2_from) if lite2_from else None, runtimes=runtimes,
                            pip_options=shlex.split(pip_options or ""))
    except BundleError as e:
        raise common.fail(str(e)) from None
    missing = [arch for arch, parts in bundle.parts().items() if "runtime" in parts["missing"]]
    common.say(f"bundle {bundle.version} ({bundle.layout} layout): {len(bundle.files)} files, "
               f"lite2 for {', '.join(bundle.wheels) or 'no Python'} → {bundle.root}"
               + (f"; no runtime for {', '.join(missing)} (see above)" if missing else ""), err=False)


def _fleet_python_tags(c, inventory, accept_new_host_keys) -> list[str]:
    inv, boards = common.selection(c, inventory, None, None, True)
    run = common.run(c, inv, boards, python_tag_job, common.settings(c, inv, accept_new_host_keys, False), "python")
    tags = sorted({r.data for r in run.results if r.data})
    unread = [f"{r.board} ({r.status}: {r.error})" if r.error else f"{r.board} (no Python)"
              for r in run.results if not r.data]
    if unread:
        common.say(f"rkdeploy: Python not read on {len(unread)} board(s): {'; '.join(unread)}. The bundle covers "
                   f"{', '.join(tags) or 'none'}; add others with --python")
    if run.retry_file:
        common.say(f"Boards to retry: --host @{run.retry_file}")
    if not tags:
        raise common.fail("no board's Python could be read: pass --python TAGS (e.g. 3.10,3.11)")
    common.say(f"fleet Python: {', '.join(tags)}")
    return tags


@task(name="list", help={"json": "print machine-readable JSON on stdout instead of the table"})
def bundle_list(c, json=False):
    """The SDK bundles available to provision, and per architecture which parts each has."""
    out = []
    for version in list_versions(common.bundles_dir(c)):
        try:
            b = load_bundle(common.bundles_dir(c), version)
        except BundleError as e:
            out.append({"version": version, "error": str(e)})
            continue
        out.append({"version": version, "layout": b.layout, "arches": b.parts()})
    code = report.EXIT_FAILED if any("error" in entry for entry in out) else 0
    if json:
        report.print_json(report.envelope("bundle.list", {"bundles": out}, code=code))
    else:
        for entry in out:
            if "error" in entry:
                common.say(f"{entry['version']:10} unreadable: {entry['error']}", err=False)
                continue
            common.say(f"{entry['version']:10} {entry['layout']}", err=False)
            for line in describe_parts(load_bundle(common.bundles_dir(c), entry["version"])):
                arch, _, rest = line.partition(": ")
                common.say(f"  {arch:13} {rest}", err=False)
    report.finish(code)


@task(name="verify", help={"bundle": "the bundle's version (default: all)"})
def bundle_verify(c, bundle=None):
    """Check every bundle file against its manifest: a tampered or truncated file is named."""
    versions = [bundle] if bundle else list_versions(common.bundles_dir(c))
    bad = 0
    for version in versions:
        try:
            problems = verify(load_bundle(common.bundles_dir(c), version))
        except BundleError as e:
            problems = [str(e)]
        for p in problems:
            common.say(f"{version}: {p}", err=False)
        bad += len(problems)
        if not problems:
            common.say(f"{version}: ok", err=False)
    report.finish(report.EXIT_FAILED if bad else 0)


PROVISION_HELP = {**SELECT_HELP, "bundle": "the SDK bundle to install (default: rkdeploy.bundle)",
                  "check": "print the plan and change nothing", "lock-wait": OPTION_HELP["lock-wait"],
                  "persist": "install a systemd unit for rknn_server so that it survives reboots"}


@task(help=PROVISION_HELP)
def provision(c, host=None, group=None, all=False, inventory=None, bundle=None, check=False, lock_wait=60,
              persist=False, json=False, parallel=None, fail_percent=None, accept_new_host_keys=False,
              prompt_for_sudo_password=False):
    """Install librknnrt, rknn_server, scripts, headers and lite2 (offline) from an SDK bundle, restart the server.

    Only what differs (by sha256) is sent; a second run changes nothing. Exit code: 0 done; bit flags
    4 unreachable, 8 failed/refused; 1 bad input.
    """
    sdk = common.bundle(c, bundle)
    inv, boards = common.selection(c, inventory, host, group, all)
    settings = common.settings(c, inv, accept_new_host_keys, prompt_for_sudo_password)
    run = common.run(c, inv, boards, provision_job(sdk, check_only=check, lock_wait=float(lock_wait), persist=persist), settings,
               "provision", parallel, fail_percent)
    _report_provision("provision", run, sdk.version, check, json)


def _report_provision(task_name, run, version, check, json):
    if json:
        report.print_json(report.envelope(task_name, {"bundle": version, "check": check, "boards": [
            {"board": r.board, "status": r.status, "error": r.error or None, "bytes_sent": r.bytes_sent,
             "remote_commands": r.commands, "seconds": round(r.seconds, 3),
             "plan": r.data.to_dict() if hasattr(r.data, "to_dict") else r.data} for r in run.results]}, run), run)
    else:
        render_provision(common.out(False), run, version, check)
    report.finish(report.exit_code(run))


SERVER_HELP = common.help_for("host", "group", "all", "inventory", "json", "parallel", "fail-percent",
                              "accept-new-host-keys", "lock-wait")


@task(name="rollback", help=SERVER_HELP)
def provision_rollback(c, host=None, group=None, all=False, inventory=None, lock_wait=60, json=False,
                       parallel=None, fail_percent=None, accept_new_host_keys=False):
    """Put back the runtime, server, script and header files the last provision replaced (lite2 stays as is)."""
    inv, boards = common.selection(c, inventory, host, group, all)
    run = common.run(c, inv, boards, provision_rollback_job(lock_wait=float(lock_wait)),
               common.settings(c, inv, accept_new_host_keys, False), "rollback", parallel, fail_percent)
    _report_provision("rollback", run, None, False, json)


def server_task(action):
    def body(c, host=None, group=None, all=False, inventory=None, json=False, lock_wait=60, parallel=None,
             fail_percent=None, accept_new_host_keys=False):
        inv, boards = common.selection(c, inventory, host, group, all)
        run = common.run(c, inv, boards, server_job(action, lock_wait=float(lock_wait)),
                   common.settings(c, inv, accept_new_host_keys, False), f"server {action}", parallel, fail_percent)
        _report_provision(f"server.{action}", run, None, False, json)
    body.__doc__ = {"start": "Start rknn_server the board's way (systemd unit or start_rknn.sh).",
                    "stop": "Stop rknn_server (and its start_rknn.sh loop).",
                    "restart": "Restart rknn_server the board's way.",
                    "status": "Whether rknn_server runs, its PID, version and how it is managed."}[action]
    body.__name__ = action
    return task(body, name=action, help=SERVER_HELP)


