"""Version policy: which combinations are findings, how severe, and with which fix."""
from packaging.version import Version

from rkdeploy.policy import ERROR, WARNING, Target, evaluate, status_of
from rkdeploy.probe import parse_probe
from tests.conftest import FIXTURES

PROBES = FIXTURES / "probe"


def facts(name):
    return parse_probe((PROBES / name).read_text())


def by_component(findings):
    return {(f.component, f.severity) for f in findings}


def test_a_consistent_1_5_0_board_passes_when_no_target_is_set():
    findings = evaluate("box2", facts("rk3588-field-1.5.0.txt"), Target())
    assert status_of(findings) == "ok"
    assert not [f for f in findings if f.severity == ERROR]


def test_the_same_board_against_sdk_2_3_2_needs_runtime_and_server_upgrades_with_the_command():
    findings = evaluate("box2", facts("rk3588-field-1.5.0.txt"), Target(sdk=Version("2.3.2")))
    assert status_of(findings) == "mismatch"
    assert {("runtime", ERROR), ("server", ERROR)} <= by_component(findings)
    assert all(f.fix == "inv provision --host box2 --bundle 2.3.2" for f in findings if f.severity == ERROR)


def test_server_and_runtime_that_disagree_are_a_mismatch_explained_by_the_protocol_error():
    findings = evaluate("box3", facts("rk3588-mismatch.txt"), Target())
    server = [f for f in findings if f.component == "server"]
    assert len(server) == 1 and "1.6.0" in server[0].message and "2.3.2" in server[0].message
    assert "msg_ioctl_ack" in server[0].message


def test_a_pc_toolkit_other_than_the_board_server_is_a_mismatch_naming_both():
    findings = evaluate("box2", facts("rk3588-field-1.5.0.txt"), Target(toolkit=Version("2.3.2")))
    toolkit = [f for f in findings if f.component == "toolkit"]
    assert toolkit and toolkit[0].severity == ERROR and "2.3.2" in toolkit[0].message and "1.5.0" in toolkit[0].message


def test_a_non_elf_runtime_is_an_error_that_mentions_invalid_elf_header():
    findings = evaluate("opi", facts("vendor-root-html-runtime.txt"), Target())
    runtime = [f for f in findings if f.component == "runtime"]
    assert runtime[0].severity == ERROR and "invalid ELF header" in runtime[0].message


def test_a_stopped_server_is_a_warning_with_the_start_command():
    findings = evaluate("opi", facts("vendor-root-html-runtime.txt"), Target())
    stopped = [f for f in findings if f.short == "server stopped"]
    assert stopped[0].severity == WARNING and stopped[0].fix == "inv server.start --host opi"


def test_an_old_driver_is_only_a_warning():
    board = facts("rk3588-field-1.5.0.txt")
    board.npu_driver = parse_probe("npu_driver=RKNPU driver: v0.8.2\nend=ok").npu_driver
    findings = evaluate("b", board, Target())
    driver = [f for f in findings if f.component == "driver"]
    assert driver[0].severity == WARNING and "0.8.8" in driver[0].message
    assert status_of(findings) == "ok"


def test_an_unreadable_driver_without_sudo_says_how_to_give_a_password():
    board = facts("rk3588-field-1.5.0.txt")
    board.npu_driver, board.sudo = None, "no"
    driver = [f for f in evaluate("b", board, Target()) if f.component == "driver"]
    assert "--prompt-for-sudo-password" in driver[0].fix


def test_a_user_outside_the_npu_node_group_is_told_which_group_to_join():
    board = facts("rk3588-field-1.5.0.txt")
    board.user_groups = ["rock"]
    npu = [f for f in evaluate("b", board, Target()) if f.component == "npu"]
    assert npu[0].fix == "sudo usermod -aG video rock"


def test_a_server_on_a_board_without_strings_is_a_warning_naming_binutils():
    board = facts("rk3588-field-1.5.0.txt")
    assert not [f for f in evaluate("box2", board, Target()) if "strings" in f.message]
    board.strings = False
    found = [f for f in evaluate("box2", board, Target()) if "strings" in f.message]
    assert [(f.component, f.severity, f.fix) for f in found] == [("server", WARNING, "sudo apt-get install binutils")]
    assert "Error reading version info" in found[0].message
