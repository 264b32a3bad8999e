"""provision's plan, exactly: every step (kind, the words of the plan table, its wheels), note and refusal for the
field board (rk3588, 1.5.0, start_rknn.sh, cp311, pip 23) changed one fact at a time. Written from the mutation run
on rkdeploy/provision.py (plan_provision and _plan_lite2: 71 of 180 changes survived test_plans.py)."""
import pytest

from rkdeploy.provision import plan_provision
from rkdeploy.versions import ComponentVersion
from tests.unit.test_plans import bundle, facts

WHEELS = {"cp311": ["pip-24.0-py3-none-any.whl", "numpy-1.26-cp311.whl", "rknn_toolkit_lite2-2.3.2-cp311.whl"],
          "cp39": ["pip-24.0-py3-none-any.whl", "psutil-5.9.tar.gz", "rknn_toolkit_lite2-2.3.2-cp39.whl"]}
RUNTIME = ("file", "/usr/lib/librknnrt.so (runtime)", [])
SERVER = ("file", "/usr/bin/rknn_server (server)", [])
LITE2 = ("lite2", "rknn-toolkit-lite2 — → 2.3.2 (cp311, offline)", WHEELS["cp311"][1:])
RESTART = ("server", "restart rknn_server (start_rknn.sh)", [])
NO_WHEEL = ("bundle 2.3.2 has no lite2 wheel for cp310 (has: {have}): re-import it with --python cp310 if lite2 "
            "exists for that release")


def board(**changes):
    b = facts("rk3588-field-1.5.0.txt")
    for key, value in changes.items():
        setattr(b, key, value)
    return b


def matching(**changes):
    """The field board with the bundle's files already in place."""
    b = board(**changes)
    b.files = {f.dest: f.sha256 for f in bundle().files}
    return b


CASES = {
    "the field board": (board(), {}, [RUNTIME, SERVER, LITE2, RESTART], []),
    "no python": (board(python_tag=""), {}, [RUNTIME, SERVER, RESTART], ["no python3 on the board: lite2 skipped"]),
    "no wheel for its python": (board(python_tag="cp310"), {}, [RUNTIME, SERVER, RESTART],
                                [NO_WHEEL.format(have="cp311, cp39")]),
    "a bundle without wheels": (board(python_tag="cp310"), {"wheels": {}}, [RUNTIME, SERVER, RESTART],
                                [NO_WHEEL.format(have="none")]),
    "a source dependency without gcc": (
        board(python_tag="cp39", python_h=True, gcc=False), {},
        [RUNTIME, SERVER, ("lite2", "rknn-toolkit-lite2 — → 2.3.2 (cp39, offline)", WHEELS["cp39"][1:]), RESTART],
        ["a dependency builds from source and the board lacks Python.h/gcc: sudo apt-get install python3-dev gcc"]),
    "a source dependency without Python.h": (
        board(python_tag="cp39", python_h=False, gcc=True), {},
        [RUNTIME, SERVER, ("lite2", "rknn-toolkit-lite2 — → 2.3.2 (cp39, offline)", WHEELS["cp39"][1:]), RESTART],
        ["a dependency builds from source and the board lacks Python.h/gcc: sudo apt-get install python3-dev gcc"]),
    "a source dependency with both": (
        board(python_tag="cp39", python_h=True, gcc=True), {},
        [RUNTIME, SERVER, ("lite2", "rknn-toolkit-lite2 — → 2.3.2 (cp39, offline)", WHEELS["cp39"][1:]), RESTART],
        []),
    "pip 19.2.3": (board(pip="19.2.3"), {}, [
        RUNTIME, SERVER, ("pip", "pip 19.2.3 → the wheelhouse's (manylinux2014 needs ≥19.3)", WHEELS["cp311"][:1]),
        LITE2, RESTART], []),
    "pip 19.3 exactly": (board(pip="19.3"), {}, [RUNTIME, SERVER, LITE2, RESTART], []),
    "no pip": (board(pip=""), {}, [
        RUNTIME, SERVER, ("pip", "pip missing → the wheelhouse's (manylinux2014 needs ≥19.3)", WHEELS["cp311"][:1]),
        LITE2, RESTART], []),
    "a pip version that is no number": (board(pip="unknown"), {}, [
        RUNTIME, SERVER, ("pip", "pip unknown → the wheelhouse's (manylinux2014 needs ≥19.3)", WHEELS["cp311"][:1]),
        LITE2, RESTART], []),
    "lite2 of another release": (board(lite2=ComponentVersion("1.5.0")), {}, [
        RUNTIME, SERVER, ("lite2", "rknn-toolkit-lite2 1.5.0 → 2.3.2 (cp311, offline)", WHEELS["cp311"][1:]),
        RESTART], []),
    "lite2 of the bundle's release": (board(lite2=ComponentVersion("2.3.2")), {}, [RUNTIME, SERVER, RESTART], []),
    "a stopped server under systemd": (board(server_unit=True, server_running=False), {},
                                       [RUNTIME, SERVER, LITE2, ("server", "start rknn_server (systemd)", [])], []),
    "managed by systemd without a unit file seen": (board(server_manager="systemd"), {},
                                                     [RUNTIME, SERVER, LITE2, ("server", "restart rknn_server (systemd)",
                                                                                [])], []),
    "--persist on systemd": (board(systemd=True), {"persist": True}, [
        RUNTIME, SERVER, LITE2, ("persist", "install rknn_server.service (systemd: survives reboots)", []),
        ("server", "restart rknn_server (systemd)", [])], []),
    "--persist without systemd": (board(systemd=False), {"persist": True}, [RUNTIME, SERVER, LITE2, RESTART],
                                  ["--persist: this board does not run systemd; start_rknn.sh keeps managing "
                                   "rknn_server"]),
    "--persist where the unit exists": (board(systemd=True, server_unit=True), {"persist": True},
                                        [RUNTIME, SERVER, LITE2, ("server", "restart rknn_server (systemd)", [])], []),
    "everything in place": (matching(lite2=ComponentVersion("2.3.2")), {}, [], []),
    "everything in place, --persist on systemd": (
        matching(lite2=ComponentVersion("2.3.2"), systemd=True), {"persist": True},
        [("persist", "install rknn_server.service (systemd: survives reboots)", []),
         ("server", "restart rknn_server (systemd)", [])], []),
    "only the start script differs": (
        board(lite2=ComponentVersion("2.3.2"), files={"/usr/lib/librknnrt.so": bundle().files[0].sha256,
                                                     "/usr/bin/rknn_server": "f" * 64}), {},
        [("file", "/usr/bin/start_rknn.sh (start_script)", [])], []),
    "in place but stopped": (matching(lite2=ComponentVersion("2.3.2"), server_running=False), {},
                             [("server", "start rknn_server (start_rknn.sh)", [])], []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_plan_exactly(case):
    facts_, options, steps, notes = CASES[case]
    plan = plan_provision("box2", facts_, bundle(wheels=options.get("wheels", WHEELS)),
                          persist=options.get("persist", False))
    assert (plan.board, plan.bundle, plan.arch, plan.refused) == ("box2", "2.3.2", "aarch64", "")
    assert [(s.kind, s.what, s.wheels) for s in plan.steps] == steps
    assert plan.notes == notes
    assert all(s.file is not None for s in plan.steps if s.kind == "file")


@pytest.mark.parametrize("arch,refused", [
    ("x86_64", "architecture x86_64: Rockchip ships aarch64 and armhf only"),
    ("", "architecture unknown: Rockchip ships aarch64 and armhf only"),
    ("armv7l", "bundle 2.3.2 has no librknnrt.so for armhf (it has: aarch64 (runtime, server, lite2)): import an SDK "
               "tree of 2.3.2 that has it, or add Rockchip's librknnrt.so of 2.3.2 from elsewhere: inv bundle.import "
               "SDK_PATH --runtime armhf=PATH/librknnrt.so"),
])
def test_boards_the_bundle_cannot_serve_get_no_steps_and_the_reason(arch, refused):
    plan = plan_provision("box2", board(arch=arch), bundle(wheels=WHEELS))
    assert plan.refused == refused and plan.steps == [] and plan.notes == []
