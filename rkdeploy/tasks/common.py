"""What every task shares: selecting boards, SSH settings, running a job on the fleet, failing cleanly."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

import functools

import invoke
from invoke import Exit
from rich.console import Console

from .. import report
from ..bundle import BundleError, list_versions, load_bundle
from ..report import EXIT_USAGE
from ..fleet import run_fleet
from ..inventory import InventoryError, load
from ..rknn_model import ModelError, read_model
from ..settings import ssh_settings, state_dir
from ..toolkit import ToolkitError, read_toolkit, toolkit_python

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
OPTION_HELP = {**SELECT_HELP,
               "model-dir": "model directory on the boards (default: board var model_dir, else /opt/rkdeploy/models)",
               "lock-wait": "seconds to wait for another run's lock on a board (default 60)"}


# Long options only: Invoke would derive short flags from the letters each task happens to have free, so
# --accept-new-host-keys would be -c in one task and -e or -t in others (and --fail-percent even `--`).
task = functools.partial(invoke.task, auto_shortflags=False)


def fail(message: str, code: int = EXIT_USAGE) -> Exit:
    """Leave with a message (cleaned: it often quotes a file's or the toolkit's text) and exit code 1."""
    return Exit(f"rkdeploy: {report.clean(message, multiline=True)}", code=code)


def selection(c, inventory, host, group, all):
    try:
        inv = load(inventory or c.config.rkdeploy.inventory)
        return inv, inv.select(hosts=host, group=group, all=all)
    except (InventoryError, OSError) as e:
        raise fail(str(e)) from None


def settings(c, inv, accept_new_host_keys, prompt_for_sudo_password):
    password = None
    if prompt_for_sudo_password:
        if not sys.stdin.isatty():
            raise fail("--prompt-for-sudo-password needs a terminal to ask on")
        password = getpass.getpass("sudo password for the boards: ")
    return ssh_settings(c.config, inv.settings, accept_new_host_keys=accept_new_host_keys, sudo_password=password)


def toolkit(c) -> tuple[dict, object]:
    python = toolkit_python(c.config.perf.get("toolkit_python"))
    if not python:
        return {"python": None, "version": None, "note": "not configured (perf.toolkit_python)"}, None
    try:
        tk = read_toolkit(python)
        return {"python": python, "version": tk.version, "note": None}, tk.release
    except ToolkitError as e:
        return {"python": python, "version": None, "note": str(e)}, None


def run(c, inv, boards, job, settings, label, parallel=None, fail_percent=None, transfer_bytes=0):
    return run_fleet(boards, job, settings, label=label,
                     parallel=int(parallel or inv.settings.get("parallel") or c.config.rkdeploy.parallel),
                     fail_percent=float(fail_percent) if fail_percent is not None else None,
                     console=report.console(stderr=True), retry_dir=state_dir(c.config), transfer_bytes=transfer_bytes)


def out(json: bool) -> Console:
    """The report's console (no markup, no highlighting: report.console); on stderr when stdout carries JSON."""
    return report.console(stderr=json)


def say(message, *, err: bool = True) -> None:
    """One plain line that may quote untrusted text (a board's answer, a bundle's fields), cleaned."""
    print(report.clean(message, multiline=True), file=sys.stderr if err else sys.stdout)


def model_or_fail(path: str):
    try:
        return read_model(path)
    except ModelError as e:
        raise fail(str(e)) from None


def help_for(*keys: str, **extra: str) -> dict:
    """Help for exactly the options a task has (Invoke refuses help for options that do not exist)."""
    return {**{k: OPTION_HELP[k] for k in keys}, **extra}


def bundles_dir(c) -> Path:
    return Path(str(c.config.rkdeploy.get("bundles_dir") or "bundles")).expanduser()


def bundle(c, version):
    version = version or c.config.rkdeploy.get("bundle")
    if not version:
        have = ", ".join(list_versions(bundles_dir(c))) or "none yet (inv bundle.import SDK_PATH)"
        raise fail(f"which SDK bundle? pass --bundle VERSION (bundles: {have})")
    try:
        return load_bundle(bundles_dir(c), str(version))
    except BundleError as e:
        raise fail(str(e)) from None


def toolkit_python_or_fail(c) -> str:
    python = toolkit_python(c.config.perf.get("toolkit_python"))
    if not python:
        raise fail("no rknn-toolkit2 environment: create one with `inv perf.setup --version 2.3.2` (a virtualenv "
                    "of its own, ~1.3 GB with CPU torch), or point perf.toolkit_python in invoke.yaml (or "
                    "RKDEPLOY_TOOLKIT_PYTHON) at the python of an existing one")
    return python


