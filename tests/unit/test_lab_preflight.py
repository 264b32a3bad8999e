"""The lab's preflight: on a machine without the lab's packages, `inv lab.up` says what to install (PATH faked)."""
import os
import stat

import pytest
from invoke import Context, Exit

from tests.lab import tasks as lab_tasks
from tests.lab.host import EMULATION_TOOLS, LAB_TOOLS, LabError, missing_tools, preflight


def fake_path(tmp_path, tools):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        exe = bin_dir / tool
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(bin_dir)


def test_a_machine_with_every_tool_passes_the_preflight(tmp_path):
    path = fake_path(tmp_path, [*LAB_TOOLS, *EMULATION_TOOLS])
    assert missing_tools(path=path) == {}
    preflight(path=path)


def test_a_machine_without_binfmt_support_is_told_the_package_and_the_setup_script(tmp_path):
    path = fake_path(tmp_path, [t for t in [*LAB_TOOLS, *EMULATION_TOOLS] if t != "update-binfmts"])
    with pytest.raises(LabError) as err:
        preflight(path=path)
    message = str(err.value)
    assert "update-binfmts" in message and "sudo apt-get install binfmt-support`" in message
    assert "sudo bash scripts/setup.sh" in message


def test_an_empty_path_lists_every_tool_and_each_package_once(tmp_path):
    missing = missing_tools(path=str(tmp_path))
    assert set(missing) == {*LAB_TOOLS, *EMULATION_TOOLS}
    with pytest.raises(LabError) as err:
        preflight(path=str(tmp_path))
    apt = str(err.value).split("sudo apt-get install ", 1)[1].rstrip("`")
    assert sorted(apt.split()) == sorted(set(missing.values()))
    for tool in ("ip", "unshare", "nsenter", "update-binfmts", "qemu-aarch64-static", "debootstrap",
                 "aarch64-linux-gnu-gcc", "arm-linux-gnueabihf-gcc", "sshd", "zstd", "mount"):
        assert tool in missing


def test_native_boards_need_no_emulation_tools(tmp_path):
    assert missing_tools(native=True, path=fake_path(tmp_path, LAB_TOOLS)) == {}


def test_inv_lab_up_without_the_tools_exits_with_the_fix_not_a_file_not_found_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_path(tmp_path, ["ip", "sshd"]))
    started = []
    monkeypatch.setattr(lab_tasks, "_lab", lambda name: started.append(name))
    with pytest.raises(Exit) as err:
        lab_tasks.up(Context(), name="pf")
    assert err.value.code == 1 and not started
    message = str(err.value.message)
    assert message.startswith("lab.up: this machine lacks the lab's tools") and "update-binfmts" in message
    assert "scripts/setup.sh" in message and os.environ["PATH"] == str(tmp_path / "bin")
