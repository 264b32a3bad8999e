from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def real_toolkit() -> str:
    """The python of a REAL rknn-toolkit2 environment (RKDEPLOY_TOOLKIT_PYTHON; scripts/test.sh makes it with
    `python -m rkdeploy.toolkit 2.3.2`, cached by the hash of rkdeploy/toolkit_constraints/2.3.2.txt).
    Missing: a failure under CI (CI=true), a skip with the reason elsewhere. The lab's stand-in is refused."""
    from rkdeploy.toolkit import ToolkitError, read_toolkit
    from tests.rockchip_files import in_ci

    def unavailable(reason: str):
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)

    python = os.environ.get("RKDEPLOY_TOOLKIT_PYTHON")
    if not python:
        unavailable("RKDEPLOY_TOOLKIT_PYTHON is not set: scripts/test.sh sets it to the real rknn-toolkit2 "
                    "environment (python -m rkdeploy.toolkit 2.3.2 makes it)")
    try:
        toolkit = read_toolkit(python)
    except ToolkitError as e:
        unavailable(str(e))
    if "standin" in toolkit.version:
        unavailable(f"{python} holds the lab's stand-in ({toolkit.version}), not Rockchip's rknn-toolkit2")
    return python
