"""The board lock on lab boards: a held lock makes another deploy give up with the busy message, a killed or
stopped holder frees the board within the README's 15 s (and a stopped one learns it lost the lock), and
another local user on the board cannot open the lock file to block rollouts."""
import json
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.e2e.conftest import own_lab, rkdeploy, ssh
from tests.lab import modelgen

pytestmark = pytest.mark.lab
MODEL = modelgen.cached(soc="rk3588", toolkit="2.3.2", format=6, size_kb=64)
FREE_WITHIN = 15            # README: a killed run or cut link frees the board within 15 s
LOCK_FILE = "/home/rock/.cache/rkdeploy/lock/board.lock"

# A run that holds a board's lock, with rkdeploy's own code: says "held", then answers "check" with
# ensure_held()'s verdict; the end of its input releases the lock.
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from rkdeploy.connection import SshSettings
    from rkdeploy.session import BoardSession
    from rkdeploy.inventory import load
    from rkdeploy.lock import BoardLock, LockLost
    inv = load(sys.argv[1])
    board = inv.select(hosts=sys.argv[2])[0]
    session = BoardSession(board, SshSettings(known_hosts=Path(inv.settings["known_hosts"])))
    with BoardLock(session, 60) as lock:
        print("held", flush=True)
        for line in sys.stdin:
            try:
                lock.ensure_held()
                print("still held", flush=True)
            except LockLost as e:
                print(f"lost: {e}", flush=True)
    session.close()
""")


@pytest.fixture(scope="module")
def lab():
    with own_lab("k", profiles=["rk3588-fresh"]) as lab:
        yield lab


@pytest.fixture
def holder(lab):
    made = []

    def start():
        board = lab.boards()[0]
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lab.inventory), board.name], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        made.append(proc)
        assert proc.stdout.readline() == "held\n"
        return proc

    yield start
    for proc in made:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait()


def lock_is_free(lab) -> bool:
    """As the login user: would `flock -n` get the lock now?"""
    probe = ssh(lab, lab.boards()[0], f"flock -n -E 75 {LOCK_FILE} true; echo $?")
    return probe.stdout.strip() == "0"


def free_within(lab, seconds: float, since: float) -> float:
    """Poll until the board lock is free; seconds taken since `since`, failing after `seconds`."""
    while not lock_is_free(lab):
        assert time.monotonic() - since < seconds, f"the board lock was not free within {seconds} s"
    return time.monotonic() - since


def deploy(lab, *args):
    proc = rkdeploy("deploy", str(MODEL), "--host", lab.boards()[0].name, "--force", "--json",
                    "--inventory", str(lab.inventory), *args)
    return proc, json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None


def test_a_held_lock_makes_another_deploy_give_up_with_the_busy_message_and_exit_code_8(lab, holder):
    held = holder()
    proc, doc = deploy(lab, "--name", "busy", "--lock-wait", "2")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "another rkdeploy run holds this board's lock (waited 2 s)" in doc["boards"][0]["error"]
    held.stdin.close()
    assert held.wait(30) == 0
    proc, doc = deploy(lab, "--name", "busy", "--lock-wait", "2")
    assert proc.returncode == 0 and doc["boards"][0]["status"] == "changed", proc.stdout + proc.stderr


def test_a_killed_holder_frees_the_board_within_15_s(lab, holder):
    held = holder()
    assert not lock_is_free(lab)
    held.kill()
    killed = time.monotonic()
    assert free_within(lab, FREE_WITHIN, killed) < FREE_WITHIN


def test_a_stopped_holder_loses_the_board_within_15_s_and_knows_it(lab, holder):
    held = holder()
    held.stdin.write("check\n")
    held.stdin.flush()
    assert held.stdout.readline() == "still held\n"
    held.send_signal(signal.SIGSTOP)                 # a suspended laptop: no heartbeat, the link stays up
    stopped = time.monotonic()
    free_within(lab, FREE_WITHIN + 5, stopped)       # the board's holder times out (15 s without a beat)
    proc, doc = deploy(lab, "--name", "taken", "--lock-wait", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr           # another run takes the board
    held.send_signal(signal.SIGCONT)
    held.stdin.write("check\n")
    held.stdin.flush()
    verdict = held.stdout.readline()
    assert verdict.startswith("lost: the board lock may have been lost: no heartbeat for "), verdict
    assert "nothing was activated" in verdict


def test_another_local_user_cannot_open_the_lock_file(lab, holder):
    board = lab.boards()[0]
    held = holder()                                  # the lock file exists and is held
    made = lab.board_root_exec(board, "id mallory > /dev/null 2>&1 || useradd -m mallory")
    assert made.returncode == 0, made.stderr
    tries = {"flock": f"flock -n {LOCK_FILE} true", "read": f"cat {LOCK_FILE} > /dev/null",
             "list": "ls /home/rock/.cache/rkdeploy/lock"}
    for what, command in tries.items():
        tried = lab.board_root_exec(board, f"su -s /bin/sh mallory -c {shlex.quote(command)} 2>&1; echo rc=$?")
        said = tried.stdout.decode(errors="replace")
        assert "Permission denied" in said and "rc=0" not in said, (what, said)
    mode = ssh(lab, board, "stat -c %a /home/rock/.cache/rkdeploy/lock").stdout.strip()
    assert mode == "700"
    held.stdin.close()
    assert held.wait(30) == 0
