"""Every finding of the version policy, exactly: severity, component, the message a user reads, the fix and the
table's short reason (README: "Every finding comes with its reason and the command that fixes it"). One board,
the field fixture (rk3588, rknn_server and librknnrt 1.5.0, running, user in video), changed one fact at a time.
Written from the mutation run on rkdeploy/policy.py, where the looser tests left 290 of 469 changes unnoticed."""
import dataclasses

import pytest
from packaging.version import Version

from rkdeploy.facts import InstalledFile, NpuNode
from rkdeploy.policy import Finding, Target, evaluate, status_of
from rkdeploy.probe import parse_probe
from rkdeploy.versions import ComponentVersion
from tests.conftest import FIXTURES

E, W = "error", "warning"
PROVISION = "inv provision --host box2"
NOT_RUNNING = "rknn_server is installed but not running (the toolkit then fails with 'server connect fail')"
NO_LITE2 = "rknn-toolkit-lite2 is not installed (Python apps on the board need it)"


def board(**changes):
    b = parse_probe((FIXTURES / "probe" / "rk3588-field-1.5.0.txt").read_text())
    for key, value in changes.items():
        setattr(b, key, value)
    return b


def V(release: str) -> ComponentVersion:
    return ComponentVersion(release)


CASES = {
    "consistent": (board(), Target(), []),
    "another architecture": (board(arch="x86_64"), Target(), [
        (E, "arch", "architecture x86_64 has no RKNN runtime (Rockchip ships aarch64 and armhf only)", "",
         "arch x86_64")]),
    "an unknown architecture": (board(arch=""), Target(), [
        (E, "arch", "architecture unknown has no RKNN runtime (Rockchip ships aarch64 and armhf only)", "",
         "arch unknown")]),
    "armhf": (board(arch="armv7l"), Target(), []),
    "arm64 spelled arm64": (board(arch="arm64"), Target(), []),
    "armv8l": (board(arch="armv8l"), Target(), []),
    "no runtime": (board(runtime=None), Target(sdk=Version("2.3.2")), [
        (E, "runtime", "librknnrt.so is not installed (looked in /usr/lib, /usr/lib64, /usr/local/lib, /oem/usr/lib)",
         PROVISION + " --bundle 2.3.2", "no librknnrt"),
        (E, "server", "rknn_server 1.5.0 is not the fleet's SDK 2.3.2", PROVISION + " --bundle 2.3.2",
         "rknn_server 1.5.0 ≠ SDK 2.3.2"),
        (W, "lite2", NO_LITE2, PROVISION + " --bundle 2.3.2", "no lite2")]),
    "a runtime that is no ELF": (board(runtime=InstalledFile("/usr/lib/librknnrt.so", is_elf=False)), Target(), [
        (E, "runtime", "/usr/lib/librknnrt.so is not an ELF library (programs fail with 'invalid ELF header'; "
                       "often a web page saved by mistake)", PROVISION, "runtime not ELF")]),
    "a runtime without a version": (board(runtime=InstalledFile("/usr/lib/librknnrt.so", version=None)), Target(), [
        (E, "runtime", "/usr/lib/librknnrt.so carries no librknnrt version string", PROVISION, "runtime unversioned")]),
    "no server": (board(server=None, strings=False), Target(), [
        (E, "server", "rknn_server is not installed (connected-board eval_perf/eval_memory need it)", PROVISION,
         "no rknn_server")]),
    "a server without a version": (board(server=InstalledFile("/usr/bin/rknn_server", version=None),
                                         server_running=False), Target(), [
        (E, "server", "/usr/bin/rknn_server carries no rknn_server version string", PROVISION, "server unversioned")]),
    "a stopped server": (board(server_running=False), Target(), [
        (W, "server", NOT_RUNNING, "inv server.start --host box2", "server stopped")]),
    "no strings": (board(strings=False), Target(), [
        (W, "server", "binutils' `strings` is missing: Rockchip's rknn_server runs `strings` on librknnrt.so to read "
                      "its version, and without it connected-board runs (eval_perf, eval_memory) fail with 'Error "
                      "reading version info from command output'", "sudo apt-get install binutils",
         "no strings (binutils)")]),
    "server and runtime differ": (board(runtime=InstalledFile("/usr/lib/librknnrt.so", version=V("2.3.2")),
                                        lite2=V("2.3.2")), Target(), [
        (E, "server", "rknn_server 1.5.0 and librknnrt 2.3.2 differ: Rockchip requires one release (mismatches fail "
                      "with 'msg_ioctl_ack fail' or 'ACK_FAIL')", PROVISION, "server 1.5.0 ≠ runtime 2.3.2")]),
    "only a build suffix differs": (board(runtime=InstalledFile("/usr/lib/librknnrt.so", version=V("1.5.0+abc")),
                                          lite2=V("1.5.0")), Target(sdk=Version("1.5.0"), toolkit=Version("1.5.0")),
                                    []),
    "another SDK": (board(lite2=V("1.5.0")), Target(sdk=Version("2.3.2")), [
        (E, "runtime", "librknnrt 1.5.0 is not the fleet's SDK 2.3.2", PROVISION + " --bundle 2.3.2",
         "librknnrt 1.5.0 ≠ SDK 2.3.2"),
        (E, "server", "rknn_server 1.5.0 is not the fleet's SDK 2.3.2", PROVISION + " --bundle 2.3.2",
         "rknn_server 1.5.0 ≠ SDK 2.3.2")]),
    "a toolkit of another release than the SDK": (board(), Target(sdk=Version("1.5.0"), toolkit=Version("2.3.2")), [
        (E, "toolkit", "PC rknn-toolkit2 2.3.2 and the board's rknn_server 1.5.0 differ: connected-board runs will "
                       "fail", "inv provision --host box2 --bundle 2.3.2 (or install rknn-toolkit2==1.5.0 on the PC)",
         "toolkit 2.3.2 ≠ server 1.5.0"),
        (W, "toolkit", "the PC's rknn-toolkit2 2.3.2 is not the fleet's SDK 1.5.0: models it builds may not load on "
                       "the boards", "pip install rknn-toolkit2==1.5.0 in the toolkit's environment",
         "toolkit 2.3.2 ≠ SDK 1.5.0"),
        (W, "lite2", NO_LITE2, PROVISION + " --bundle 1.5.0", "no lite2")]),
    "only a toolkit target": (board(lite2=V("1.5.0")), Target(toolkit=Version("1.5.0")), []),
    "lite2 of another release": (board(lite2=V("2.3.2")), Target(), [
        (E, "lite2", "rknn-toolkit-lite2 2.3.2 does not match librknnrt 1.5.0", PROVISION,
         "lite2 2.3.2 ≠ runtime 1.5.0")]),
    "no lite2 with a target": (board(lite2=None), Target(toolkit=Version("1.5.0")), [
        (W, "lite2", NO_LITE2, PROVISION + " --bundle 1.5.0", "no lite2")]),
    "no lite2 on armhf": (board(lite2=None, arch="armv7l"), Target(sdk=Version("1.5.0")), []),
    "a driver below 0.9.2": (board(npu_driver=V("0.9.0")), Target(), [
        (W, "driver", "NPU driver 0.9.0 is below the recommended 0.9.2", "update the board's kernel/BSP image from "
                      "the board vendor", "driver 0.9.0 old")]),
    "a driver below 0.8.8": (board(npu_driver=V("0.8.2")), Target(), [
        (W, "driver", "NPU driver 0.8.2 is below the recommended 0.9.2 (the runtime itself warns below 0.8.8)",
         "update the board's kernel/BSP image from the board vendor", "driver 0.8.2 old")]),
    "driver 0.9.2 and 0.8.8 exactly": (board(npu_driver=V("0.9.2")), Target(), []),
    "no driver found": (board(npu_driver=None), Target(), [
        (W, "driver", "no RKNPU driver found (no debugfs entry, no dmesg line): is the NPU enabled in this kernel?",
         "", "no NPU driver")]),
    "no driver readable: sudo said no": (board(npu_driver=None, sudo="no"), Target(), [
        (W, "driver", "NPU driver version unreadable: it needs root and sudo asks for a password",
         "rerun with --prompt-for-sudo-password, or allow passwordless sudo for this user",
         "driver unreadable (sudo)")]),
    "no driver readable: no sudo rights": (board(npu_driver=None, root_mode="no-sudo-rights"), Target(), [
        (W, "driver", "NPU driver version unreadable: it needs root and rock may not use sudo on this board",
         "as root on the board grant it (usermod -aG sudo rock, or a rule in /etc/sudoers.d), or log in as root "
         "(the inventory's user: root)", "driver unreadable (no sudo rights)")]),
    "no driver readable: no sudo": (board(npu_driver=None, root_mode="no-sudo"), Target(), [
        (W, "driver", "NPU driver version unreadable: it needs root and this board has no sudo and rock is not root",
         "as root on the board install sudo (apt-get install sudo) and allow it for this user, or log in as root "
         "(the inventory's user: root)", "driver unreadable (no sudo)")]),
    "no driver readable: the password was refused": (board(npu_driver=None, root_mode="sudo-password",
                                                            root_password="refused"), Target(), [
        (W, "driver", "NPU driver version unreadable: it needs root and sudo refused the password given with "
                      "--prompt-for-sudo-password", "rerun and type the login user's own password",
         "driver unreadable (sudo)")]),
    "no driver found, with a password that sudo took": (board(npu_driver=None, root_mode="sudo-password",
                                                              root_password="ok"), Target(), [
        (W, "driver", "no RKNPU driver found (no debugfs entry, no dmesg line): is the NPU enabled in this kernel?",
         "", "no NPU driver")]),
    "a driver of 0.8.8 exactly": (board(npu_driver=V("0.8.8")), Target(), [
        (W, "driver", "NPU driver 0.8.8 is below the recommended 0.9.2", "update the board's kernel/BSP image from "
                      "the board vendor", "driver 0.8.8 old")]),
    "no NPU node": (board(npu_nodes=[]), Target(), [
        (W, "npu", "no NPU device node (/dev/rknpu or /dev/dri/renderD*)", "", "no NPU node")]),
    "root needs no group": (board(user_groups=[], sudo="root"), Target(), []),
    "one of two nodes usable": (board(user_groups=["render"], npu_nodes=[
        NpuNode("/dev/rknpu", "video", "660"), NpuNode("/dev/dri/renderD129", "render", "660")]), Target(), []),
    "no node usable": (board(user_groups=[], npu_nodes=[
        NpuNode("/dev/dri/renderD129", "render", "660"), NpuNode("/dev/rknpu", "video", "660")]), Target(), [
        (W, "npu", "user rock is not in group render/video of /dev/dri/renderD129, /dev/rknpu ('failed to open rknpu "
                   "module')", "sudo usermod -aG render rock", "NPU node permissions")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_finding_exactly(case):
    facts, target, expected = CASES[case]
    findings = evaluate("box2", facts, target)
    assert [dataclasses.astuple(f) for f in findings] == expected
    assert status_of(findings) == ("mismatch" if any(f[0] == E for f in expected) else "ok")


def test_a_finding_serialises_every_field():
    f = Finding(E, "server", "m", "fix", "short")
    assert f.to_dict() == {"severity": "error", "component": "server", "message": "m", "fix": "fix", "short": "short"}


def test_the_target_is_the_sdk_else_the_toolkit():
    assert Target(sdk=Version("2.3.2"), toolkit=Version("1.6.0")).expected == Version("2.3.2")
    assert Target(toolkit=Version("1.6.0")).expected == Version("1.6.0") and Target().expected is None
