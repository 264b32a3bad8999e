"""The task collection: thin Invoke tasks that parse options, call the library and present results.

`tasks.py` (for `inv`) and the `rkdeploy` console command serve this same collection.
"""
from __future__ import annotations

import getpass
import json as jsonlib
import sys

from invoke import Collection, Exit, Program, task
from rich.console import Console

from . import __version__
from .check import EXIT_USAGE, check_job, exit_code, to_json
from .check_report import render_check
from .fleet import run_fleet
from .inventory import InventoryError, load
from .policy import Target
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


@task(help={**SELECT_HELP, "sdk": "the SDK release the fleet should run (default: rkdeploy.sdk)"})
def check(c, host=None, group=None, all=False, inventory=None, sdk=None, json=False, parallel=None,
          fail_percent=None, accept_new_host_keys=False, prompt_for_sudo_password=False):
    """Read every selected board and show SoC, arch, driver, server, runtime, lite2 and the PC toolkit side by side.

    Exit code: 0 all match; otherwise bit flags 2 = version mismatch, 4 = unreachable, 8 = failed
    (e.g. a refused host key); 1 = bad input.
    """
    inv, boards = _selection(c, inventory, host, group, all)
    settings = _settings(c, inv, accept_new_host_keys, prompt_for_sudo_password)
    sdk = sdk or c.config.rkdeploy.get("sdk")
    if sdk and not release_of(sdk):
        raise _fail(f"--sdk {sdk!r} is not a release number like 2.3.2")
    toolkit_info, toolkit_release = _toolkit(c)
    target = Target(sdk=release_of(sdk), toolkit=toolkit_release)
    console = Console(stderr=json, width=None if sys.stdout.isatty() else 140)
    run = run_fleet(boards, check_job(target), settings, label="check",
                    parallel=int(parallel or inv.settings.get("parallel") or c.config.rkdeploy.parallel),
                    fail_percent=float(fail_percent) if fail_percent is not None else None,
                    console=Console(stderr=True), retry_dir=state_dir(c.config))
    if json:
        print(jsonlib.dumps(to_json(run, target, toolkit_info), indent=2, default=str))
    else:
        note = (f"rknn-toolkit2 {toolkit_info['version']} ({toolkit_info['python']})" if toolkit_info["version"]
                else f"rknn-toolkit2 unknown: {toolkit_info['note']}")
        render_check(console, run, target, note)
    code = exit_code(run)
    if code:
        raise Exit(code=code)


def build_namespace() -> Collection:
    ns = Collection(check)
    ns.configure(DEFAULTS)
    return ns


namespace = build_namespace()


def main() -> None:
    Program(name="rkdeploy", binary="rkdeploy", version=__version__, namespace=namespace).run()
