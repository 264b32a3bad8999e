"""`inv check`."""
from __future__ import annotations

from .. import history, report
from ..check import check_job, exit_code, to_json
from ..check_report import render_check
from ..policy import Target
from ..versions import release_of
from . import common
from .common import SELECT_HELP, task


@task(help={**SELECT_HELP, "sdk": "the SDK release the fleet should run (default: rkdeploy.sdk)",
            "bundle": "judge against this SDK bundle's release (as --sdk, but the bundle must exist)"})
def check(c, host=None, group=None, all=False, inventory=None, sdk=None, bundle=None, json=False, parallel=None,
          fail_percent=None, accept_new_host_keys=False, prompt_for_sudo_password=False):
    """Read every selected board and show SoC, arch, driver, server, runtime, lite2 and the PC toolkit side by side.

    Exit code: 0 all match; otherwise bit flags 2 = version mismatch, 4 = unreachable, 8 = failed
    (e.g. a refused host key); 1 = bad input.
    """
    inv, boards = common.selection(c, inventory, host, group, all)
    settings = common.settings(c, inv, accept_new_host_keys, prompt_for_sudo_password)
    if bundle:
        sdk = common.bundle(c, bundle).version
    sdk = sdk or c.config.rkdeploy.get("sdk")
    if sdk and not release_of(sdk):
        raise common.fail(f"--sdk {sdk!r} is not a release number like 2.3.2")
    toolkit_info, toolkit_release = common.toolkit(c)
    target = Target(sdk=release_of(sdk), toolkit=toolkit_release)
    console = common.out(json)
    run = common.run(c, inv, boards, check_job(target), settings, "check", parallel, fail_percent)
    doc = to_json(run, target, toolkit_info)
    history.save(common.state_dir(c.config), doc)           # for `inv report`'s history charts
    if json:
        report.print_json(doc, run)
    else:
        note = (f"rknn-toolkit2 {toolkit_info['version']} ({toolkit_info['python']})" if toolkit_info["version"]
                else f"rknn-toolkit2 unknown: {toolkit_info['note']}")
        render_check(console, run, target, note)
    report.finish(exit_code(run))


