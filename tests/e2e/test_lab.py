"""The board lab itself: boards that behave like the profiles say, faults that work, teardown that is total."""
import json
import os
import socket
import subprocess
import time

import pytest
from pathlib import Path

from tests.e2e.conftest import own_lab, ssh, wait_until
from tests.lab import faults
from tests.lab.fleet import Lab, load_profile

pytestmark = pytest.mark.lab


def test_every_board_is_an_aarch64_debian_reached_as_rock_with_the_generated_inventory(lab):
    for board in lab.boards():
        out = ssh(lab, board, "uname -m; id -un; hostname; sudo -n id -u")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["aarch64", "rock", board.name, "0"]


@pytest.fixture
def fresh_lab(lab):
    """Boards exactly as their profiles describe them (the session's lab gets provisioned by other tests)."""
    with own_lab("f") as own:
        yield own


def test_each_board_carries_its_profiles_soc_driver_and_sdk_versions(fresh_lab):
    lab = fresh_lab
    for board in lab.boards():
        profile = load_profile(board.profile)
        out = ssh(lab, board, "tr '\\000' ' ' < /proc/device-tree/compatible 2>/dev/null || "
                              "tr '\\000' ' ' < /sys/firmware/devicetree/base/compatible; echo; "
                              "sudo -n cat /sys/kernel/debug/rknpu/version; "
                              "cat /sys/kernel/debug/rknpu/version 2>/dev/null || echo root-only; "
                              "grep -a -o -m1 'librknnrt version: [0-9.]*' /usr/lib/librknnrt.so 2>/dev/null || echo no-runtime; "
                              "pgrep -x rknn_server >/dev/null && echo server-running || echo server-stopped")
        lines = out.stdout.splitlines()
        assert lines[0].split() == profile["compatible"]
        assert lines[1] == f"RKNPU driver: v{profile['npu_driver']}"
        assert lines[2] == "root-only"
        runtime = profile["installed"].get("runtime")
        assert lines[3] == (f"librknnrt version: {runtime}" if runtime else "no-runtime")
        assert lines[4] == ("server-running" if profile.get("server_running") else "server-stopped")


def test_the_running_stand_in_server_printed_its_banner_and_listens_on_transfer_proxy(lab):
    board = next(b for b in lab.boards() if b.profile == "rk3588-field")
    out = ssh(lab, board, "cat /var/log/rknn_server.log; grep -c '@transfer_proxy' /proc/net/unix")
    assert "start rknn server, version:1.5.0 (17e11b1 build: 2023-05-18 21:43:39)" in out.stdout
    assert out.stdout.split()[-1] == "1"


def test_restart_rknn_sh_on_one_board_does_not_touch_another_boards_server(lab):
    field, mismatch = (next(b for b in lab.boards() if b.profile == p) for p in ("rk3588-field", "rk3588-mismatch"))
    before = ssh(lab, mismatch, "pgrep -x rknn_server").stdout.strip()
    old = ssh(lab, field, "pgrep -x rknn_server").stdout.strip()
    assert old and before
    # Rockchip's restart_rknn.sh leaves its start_rknn.sh loop on the caller's stdout: over SSH, redirect it
    assert ssh(lab, field, "sudo -n restart_rknn.sh > /dev/null 2>&1 < /dev/null").returncode == 0
    # the field board's server is a new process: the restart is over (its script kills, then starts again)
    wait_until(lambda: ssh(lab, field, "pgrep -x rknn_server").stdout.strip() not in ("", old), 30,
               "a new rknn_server on the restarted board")
    assert ssh(lab, mismatch, "pgrep -x rknn_server").stdout.strip() == before


def _connect(ip: str, timeout: float) -> str:
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return "banner" if s.recv(8).startswith(b"SSH-") else "other"
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except OSError as e:
        return f"error {e.errno}"


def test_a_cut_link_makes_a_board_silent_and_restoring_it_brings_it_back(lab):
    board = lab.boards()[0]
    faults.cut_link(board)
    try:
        assert _connect(board.ip, 2) in ("timeout", "error 113")
    finally:
        faults.restore_link(board)
    assert _connect(board.ip, 5) == "banner"


def test_dropped_packets_time_out_and_rejected_ones_are_refused_at_once(lab):
    board = lab.boards()[1]
    try:
        faults.drop_packets(board)
        assert _connect(board.ip, 2) == "timeout"
        faults.reject_packets(board)
        assert _connect(board.ip, 2) == "refused"
    finally:
        faults.clear_filter(board)
    assert _connect(board.ip, 5) == "banner"


def test_a_bandwidth_limit_slows_uploads_to_the_board(lab):
    board = lab.boards()[2]
    payload = b"\0" * (1024 * 1024)

    def upload_seconds():
        started = time.monotonic()
        proc = subprocess.run(["ssh", "-i", str(lab.key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
                               "-o", "BatchMode=yes", f"rock@{board.ip}", "cat > /dev/null"],
                              input=payload, capture_output=True, timeout=60)
        assert proc.returncode == 0
        return time.monotonic() - started

    faults.limit_bandwidth(board, "2mbit")      # 8 Mbit of payload: 4 s at least, however fast the machine
    try:
        limited = upload_seconds()
        stats = subprocess.run(["tc", "-s", "qdisc", "show", "dev", board.veth], capture_output=True, text=True).stdout
    finally:
        faults.clear_bandwidth(board)
    assert "tbf" in stats and int(stats.split("overlimits")[1].split()[0]) > 0
    assert limited >= 3.5
    assert "tbf" not in subprocess.run(["tc", "qdisc", "show", "dev", board.veth], capture_output=True, text=True).stdout


def test_a_stopped_sshd_refuses_logins_while_the_board_keeps_running(lab):
    board = lab.boards()[3]
    faults.stop_sshd(lab, board)
    try:
        assert _connect(board.ip, 2) == "refused"
        assert lab.status()[3]["running"]
    finally:
        faults.start_sshd(lab, board)
    wait_until(lambda: _connect(board.ip, 2) == "banner", 30, "sshd's banner after its restart", every=0.2)
    assert ssh(lab, board, "true").returncode == 0


def test_a_filled_filesystem_refuses_writes_until_freed(lab):
    board = lab.boards()[0]
    faults.fill_disk(lab, board)
    try:
        out = ssh(lab, board, "df -Pk / | awk 'NR==2 {print $4}'; echo x > /tmp/probe-write && echo wrote")
        assert out.stdout.split()[0] == "0" and "wrote" not in out.stdout
        assert "No space left on device" in out.stderr
    finally:
        faults.free_disk(lab, board)
    assert "wrote" in ssh(lab, board, "echo x > /tmp/probe-write && echo wrote").stdout


def _traces(name: str, links: list[str]) -> list[str]:
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(f"rkl-{name}-")]
    found += [f"link {link}" for link in links if Path(f"/sys/class/net/{link}").exists()]
    mounts = open("/proc/mounts").read()
    found += [f"mount {line}" for line in mounts.splitlines() if f"rkdeploy-lab/{name}/" in line]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found += [f"process {line}" for line in ps.splitlines() if f"rkdeploy-lab/{name}/" in line]
    return found


def test_lab_down_leaves_no_namespace_link_mount_or_process_even_after_a_crash():
    name = f"d{os.getpid() % 100000}"
    lab = Lab(name)
    lab.down()
    lab.up(profiles=["rk3588-field"])
    links = [lab.bridge] + [b.veth for b in lab.boards()]
    assert _traces(name, links), "the lab should be visible while up"
    # A crash: forget the Lab object, keep only what is on disk, as a later `inv lab.down` would.
    state = json.loads(lab.state_file.read_text())
    assert state["boards"][0]["pid"]
    Lab(name).down()
    assert _traces(name, links) == []
    assert not lab.state_file.exists() and not lab.dir.exists()


def test_boards_whose_state_was_lost_are_still_found_and_ended_by_lab_down():
    name = f"o{os.getpid() % 100000}"
    lab = Lab(name)
    lab.up(profiles=["rk3588-fresh"])
    links = [lab.bridge] + [b.veth for b in lab.boards()]
    pid = lab.boards()[0].pid
    lab.state_file.write_text(json.dumps({"subnet": lab.subnet, "boards": []}))   # state lost
    Lab(name).down()
    assert not Path(f"/proc/{pid}").exists() or b"init.sh" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    for link in links:                                   # what the lost state named is not ours to guess
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    subprocess.run(["ip", "netns", "del", f"rkl-{name}-box1"], capture_output=True)
    assert _traces(name, links) == []


def test_a_second_lab_gets_its_own_subnet_and_a_clashing_one_is_refused(lab):
    from tests.lab.host import LabError

    other = Lab(f"s{os.getpid() % 100000}")
    assert other.subnet != lab.subnet
    with pytest.raises(LabError, match=f"used by lab '{lab.name}'"):
        Lab(f"x{os.getpid() % 100000}", subnet=lab.subnet)
