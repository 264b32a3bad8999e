"""Reading the PC toolkit's version from its own Python, and the errors when there is none."""
import sys

import pytest

from rkdeploy.toolkit import ToolkitError, read_toolkit, toolkit_python


def test_a_missing_toolkit_python_says_how_to_configure_one(tmp_path):
    with pytest.raises(ToolkitError, match="perf.toolkit_python"):
        read_toolkit(str(tmp_path / "nope/bin/python"))


def test_a_python_without_rknn_toolkit2_is_reported_as_such():
    with pytest.raises(ToolkitError, match="rknn-toolkit2 is not installed"):
        read_toolkit(sys.executable)


def test_the_environment_variable_wins_over_invoke_yaml(monkeypatch):
    monkeypatch.setenv("RKDEPLOY_TOOLKIT_PYTHON", "/opt/tk/bin/python")
    assert toolkit_python("/elsewhere/python") == "/opt/tk/bin/python"
    monkeypatch.delenv("RKDEPLOY_TOOLKIT_PYTHON")
    assert toolkit_python(None) is None
