"""README promises, tested without the board lab: the `rkdeploy` command against inventories of boards on
127.0.0.1 that refuse connections (closed ports), hold them without a word, or speak SSH with a key nobody
recorded; bundles made from a fake SDK tree; the plan jobs against a scripted session that answers the probe
and refuses everything else."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.lab import modelgen

RKDEPLOY = str(Path(sys.executable).parent / "rkdeploy")


def cli(*args, cwd, home):
    env = {k: v for k, v in os.environ.items() if k != "RKDEPLOY_TOOLKIT_PYTHON"} | {"HOME": str(home)}
    return subprocess.run([RKDEPLOY, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          cwd=cwd, env=env)


@pytest.fixture
def closed_ports():
    """Ports bound on 127.0.0.1 but not listening: every connection to them is refused at once."""
    held = []

    def make(n):
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held[-n:]]

    yield make
    for s in held:
        s.close()


def inventory(tmp_path, ports, groups=None, connect_timeout=1) -> Path:
    lines = [f"settings:\n  known_hosts: {tmp_path / 'known_hosts'}\n  connect_timeout: {connect_timeout}\n",
             "boards:\n"]
    for i, port in enumerate(ports):
        lines.append(f"  b{i}:\n    host: 127.0.0.1\n    port: {port}\n    user: rock\n")
        member = [g for g, names in (groups or {}).items() if f"b{i}" in names]
        if member:
            lines.append(f"    groups: [{', '.join(member)}]\n")
    path = tmp_path / "hosts.yaml"
    path.write_text("".join(lines))
    return path


def doc(proc) -> dict:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def statuses(d) -> dict:
    return {b["board"]: b["status"] for b in d["boards"]}


# -- selection: --group, @FILE, --fail-percent, --parallel -----------------------------------------------------

def test_group_selects_its_boards_and_a_retry_file_selects_the_failed_ones_again(tmp_path, closed_ports):
    inv = inventory(tmp_path, closed_ports(3), groups={"line1": ["b0", "b2"]})
    first = cli("check", "--group", "line1", "--inventory", str(inv), "--json", cwd=tmp_path, home=tmp_path)
    assert first.returncode == 4, first.stderr                     # unreachable
    d = doc(first)
    assert statuses(d) == {"b0": "unreachable", "b2": "unreachable"}
    retry = Path(d["retry_file"])
    assert retry.read_text().split() == ["b0", "b2"] and str(retry).startswith(str(tmp_path))
    again = cli("check", "--host", f"@{retry}", "--inventory", str(inv), "--json", cwd=tmp_path, home=tmp_path)
    assert again.returncode == 4 and sorted(statuses(doc(again))) == ["b0", "b2"]
    missing = cli("check", "--host", f"@{tmp_path / 'nope.txt'}", "--inventory", str(inv), cwd=tmp_path, home=tmp_path)
    assert missing.returncode == 1 and "cannot read the retry file" in missing.stderr


def test_fail_percent_stops_starting_boards_and_the_skipped_ones_count_as_failed(tmp_path, closed_ports):
    inv = inventory(tmp_path, closed_ports(4))
    stopped = cli("check", "--all", "--parallel", "1", "--fail-percent", "20", "--inventory", str(inv), "--json",
                  cwd=tmp_path, home=tmp_path)
    d = doc(stopped)
    assert list(statuses(d).values()) == ["unreachable", "skipped", "skipped", "skipped"]
    assert stopped.returncode == d["exit_code"] == 4 | 8
    everyone = cli("check", "--all", "--parallel", "4", "--inventory", str(inv), "--json", cwd=tmp_path, home=tmp_path)
    assert set(statuses(doc(everyone)).values()) == {"unreachable"} and everyone.returncode == 4


@pytest.mark.parametrize("parallel", [2, 4])
def test_parallel_bounds_the_boards_worked_on_at_once(tmp_path, parallel):
    """Four boards on one port that accepts and never speaks: no board can end before its connect timeout (T).
    With --parallel 2 the third connection comes only after T (a board had to end first); with --parallel 4
    all four come before any board could have ended. (Counting open sockets would not do: paramiko closes a
    failed connection's socket from its own thread, sometimes after the next board connected.)"""
    timeout = 3.0
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted, held = [], []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(time.monotonic())
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    inv = inventory(tmp_path, [listener.getsockname()[1]] * 4, connect_timeout=timeout)
    try:
        proc = cli("check", "--all", "--parallel", str(parallel), "--inventory", str(inv), "--json", cwd=tmp_path,
                   home=tmp_path)
    finally:
        listener.close()
        for c in held:
            c.close()
    assert proc.returncode == 4, proc.stderr
    assert len(accepted) >= 4
    first_wave = [t for t in accepted if t - accepted[0] < 0.9 * timeout]
    assert len(first_wave) == parallel, [round(t - accepted[0], 2) for t in accepted]


# -- check --sdk, exit codes of deploy and provision --------------------------------------------------------------

@pytest.mark.parametrize("sdk", ["latest", "v", "two"])
def test_check_with_an_sdk_that_is_no_release_is_bad_input_before_any_connection(tmp_path, closed_ports, sdk):
    inv = inventory(tmp_path, closed_ports(1))
    proc = cli("check", "--all", "--sdk", sdk, "--inventory", str(inv), cwd=tmp_path, home=tmp_path)
    assert proc.returncode == 1 and f"--sdk '{sdk}' is not a release number like 2.3.2" in proc.stderr
    assert "Recap" not in proc.stdout


@pytest.fixture
def unknown_key_board(tmp_path):
    """An SSH server on 127.0.0.1 whose host key is in no known_hosts: every run refuses it (failed, exit 8)."""
    import paramiko

    host_key = paramiko.ECDSAKey.generate()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    transports = []

    def serve():
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            t = paramiko.Transport(sock)
            t.add_server_key(host_key)
            t.start_server(server=paramiko.ServerInterface())
            transports.append(t)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for t in transports:
        t.close()


@pytest.fixture
def bundle_dir(tmp_path):
    from rkdeploy.bundle import import_sdk
    from tests.unit.test_bundle import fake_tree

    import_sdk(fake_tree(tmp_path / "sdk"), tmp_path / "bundles", python_tags=[], log=lambda m: None)
    return tmp_path


@pytest.mark.parametrize("task", ["deploy", "provision"])
def test_deploy_and_provision_exit_4_for_an_unreachable_board_and_8_for_a_refused_one(
        task, tmp_path, bundle_dir, closed_ports, unknown_key_board):
    model = modelgen.write(tmp_path / "det.rknn", soc="rk3588", format=6, toolkit="2.3.2")
    args = [str(model)] if task == "deploy" else ["--bundle", "2.3.2"]
    for ports, code, status in (([closed_ports(1)[0]], 4, "unreachable"), ([unknown_key_board], 8, "failed")):
        inv = inventory(tmp_path, ports)
        proc = cli(task, *args, "--all", "--inventory", str(inv), "--json", cwd=bundle_dir, home=tmp_path)
        d = doc(proc)
        assert proc.returncode == d["exit_code"] == code, proc.stderr
        assert statuses(d) == {"b0": status}
        if status == "failed":
            assert "unknown host key" in d["boards"][0]["error"] and "--accept-new-host-keys" in d["boards"][0]["error"]
    both = inventory(tmp_path, [closed_ports(1)[0], unknown_key_board])
    proc = cli(task, *args, "--all", "--inventory", str(both), cwd=bundle_dir, home=tmp_path)
    assert proc.returncode == 4 | 8, proc.stderr


def test_perfs_regression_bit_is_16_and_adds_to_the_others():
    from rkdeploy.fleet import FAILED, OK, UNREACHABLE, BoardResult, FleetRun
    from rkdeploy.report import EXIT_REGRESSION, exit_code

    run = FleetRun()
    run.results = [BoardResult("a", OK)]
    assert EXIT_REGRESSION == 16
    assert exit_code(run) == 0 and exit_code(run, regressed=True) == 16
    run.results += [BoardResult("b", UNREACHABLE), BoardResult("c", FAILED)]
    assert exit_code(run, regressed=True) == 16 | 4 | 8


# -- bundle.list and bundle.verify ------------------------------------------------------------------------------

def test_bundle_verify_and_list_exit_0_when_intact_and_8_naming_a_tampered_file(bundle_dir):
    ok = cli("bundle.verify", cwd=bundle_dir, home=bundle_dir)
    assert ok.returncode == 0 and "2.3.2: ok" in ok.stdout, ok.stderr
    listed = cli("bundle.list", "--json", cwd=bundle_dir, home=bundle_dir)
    d = doc(listed)
    assert listed.returncode == 0 == d["exit_code"] and [b["version"] for b in d["bundles"]] == ["2.3.2"]
    runtime = next((bundle_dir / "bundles/2.3.2/files").rglob("librknnrt.so"))
    runtime.write_bytes(runtime.read_bytes() + b"tampered")
    bad = cli("bundle.verify", "--bundle", "2.3.2", cwd=bundle_dir, home=bundle_dir)
    assert bad.returncode == 8 and "librknnrt.so" in bad.stdout and "2.3.2: ok" not in bad.stdout
    (bundle_dir / "bundles/2.3.2/bundle.yaml").write_text("version: [unclosed\n")
    broken = cli("bundle.list", "--json", cwd=bundle_dir, home=bundle_dir)
    d = doc(broken)
    assert broken.returncode == 8 == d["exit_code"] and "error" in d["bundles"][0]


# -- --check changes nothing; --force is loud ----------------------------------------------------------------------

class ProbeOnly:
    """A board session that answers the probe with a fixture and fails the test on anything else."""

    def __init__(self, probe_text: str, name="box2"):
        from rkdeploy.connection import SshSettings
        from rkdeploy.inventory import Board

        self.board = Board(name=name, host="127.0.0.1")
        self.settings = SshSettings()
        self.probe_text = probe_text
        self.commands = 0
        self.bytes_sent = 0
        self.root_mode = None

    def run(self, command, *, stdin=None, timeout=None):
        from rkdeploy.session import CommandResult

        self.commands += 1
        assert "rkdeploy" in command or "uname" in command, command[:200]
        return CommandResult(self.probe_text, "", 0)

    def _change(self, *args, **kwargs):
        raise AssertionError("--check sent a change to the board")

    run_as_root = send_file = send_as_root = upload = _change

    @property
    def conn(self):
        raise AssertionError("--check opened a channel of its own (the board lock?)")


def test_provision_check_plans_from_one_probe_and_changes_nothing():
    from rkdeploy.fleet import CHANGED
    from rkdeploy.provision import provision_job
    from tests.unit.test_plans import bundle

    session = ProbeOnly((FIXTURES / "probe/rk3588-mismatch.txt").read_text())
    result = provision_job(bundle(), check_only=True, lock_wait=1)(session)
    assert result.status == CHANGED and result.data.steps, result.error
    assert session.commands == 1


def test_deploy_check_plans_from_one_probe_and_changes_nothing(tmp_path):
    from rkdeploy.deploy import deploy_job
    from rkdeploy.rknn_model import read_model

    model = read_model(modelgen.write(tmp_path / "det.rknn", soc="rk3588", format=6, toolkit="2.3.1-source_code"))
    session = ProbeOnly((FIXTURES / "probe/rk3588-mismatch.txt").read_text())
    result = deploy_job(model, "det", model_dir=None, keep=3, force=False, check_only=True, lock_wait=1)(session)
    assert result.data.action == "upload", (result.status, result.error)
    assert session.commands == 1


def test_a_forced_deploy_prints_the_loud_warning_naming_board_and_reasons(tmp_path):
    from io import StringIO

    from rich.console import Console

    from rkdeploy.deploy import plan_deploy
    from rkdeploy.fleet import CHANGED, BoardResult, FleetRun
    from rkdeploy.models_report import render_forced
    from rkdeploy.probe import parse_probe
    from rkdeploy.rknn_model import read_model

    model = read_model(modelgen.write(tmp_path / "det.rknn", soc="rk3588", format=6, toolkit="2.3.1-source_code"))
    field = parse_probe((FIXTURES / "probe/rk3588-field-1.5.0.txt").read_text())
    forced = plan_deploy(model, "det", field, "box2", keep=3, force=True)
    polite = plan_deploy(model, "det", parse_probe((FIXTURES / "probe/rk3588-mismatch.txt").read_text()), "box3",
                         keep=3, force=True)
    assert forced.forced and not polite.forced
    run = FleetRun()
    run.results = [BoardResult("box2", CHANGED, data=forced), BoardResult("box3", CHANGED, data=polite)]
    screen = StringIO()
    render_forced(Console(file=screen, width=400), run)
    text = screen.getvalue()
    assert "WARNING: box2: deployed with --force despite: " in text and "Invalid RKNN model version 6" in text
    assert "box3" not in text
