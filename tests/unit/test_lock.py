"""The board lock, run here: its command by the local /bin/sh with the real `flock` in a temporary HOME (short
timeouts passed as parameters; states polled with deadlines derived from them), and again with no `flock` on
PATH (busybox boards: the directory lock, lock.DIR_LOCK), and BoardLock's own view of whether it still holds
the lock, with an injected clock."""
import io
import os
import select
import stat
import subprocess
import threading
import re
import time
from pathlib import Path

import pytest

from rkdeploy import remote
from rkdeploy.lock import (BUSY_EXIT, HEARTBEAT_EVERY, HELD_CHECK, LOCK_LOST_EXIT, BoardLock, LockLost, held_params, lock_command,
                           new_token)

SLACK = 5.0          # what a loaded 2-core machine may add to any deadline below


class Holder:
    """The lock command running locally, as the board's login user would run it."""

    def __init__(self, home: Path, wait: float = 0.0, timeout: float = 15, token: str | None = None):
        self.home, self.wait, self.timeout = home, wait, timeout
        self.token = token or new_token()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["/bin/sh", "-c", lock_command(wait, self.token, timeout)], env=env(home),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def first_line(self) -> str:
        """What it says first: "locked", or "" if it ends without (busy); within its wait (+ slack)."""
        ready, _, _ = select.select([self.proc.stdout], [], [], self.wait + SLACK)
        assert ready, f"the lock command said nothing within {self.wait + SLACK} s"
        return self.proc.stdout.readline().decode().strip()

    def beat(self) -> None:
        self.proc.stdin.write(b".\n")
        self.proc.stdin.flush()

    def let_go(self) -> None:
        self.proc.stdin.close()

    def ended(self, within: float) -> int | None:
        try:
            return self.proc.wait(within)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f and not f.closed:
                f.close()


_PATH: list[str] = []       # set by the `kind` fixture: a PATH without flock for the directory lock


def env(home: Path) -> dict:
    return dict(os.environ, HOME=str(home), **({"PATH": _PATH[0]} if _PATH else {}))


@pytest.fixture(autouse=True, params=["flock", "dir"])
def kind(request, tmp_path_factory):
    """Every lock test twice: with util-linux's flock, and on a PATH that has every tool of this machine but
    flock (as on a busybox board without it)."""
    if request.param == "dir":
        tools = tmp_path_factory.mktemp("no-flock-bin")
        for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
            for tool in Path(folder).iterdir() if Path(folder).is_dir() else ():
                if tool.name != "flock" and not (tools / tool.name).exists():
                    os.symlink(tool, tools / tool.name)
        _PATH.append(str(tools))
    yield request.param
    _PATH.clear()


@pytest.fixture
def holders(tmp_path):
    made = []

    def make(**kw) -> Holder:
        made.append(Holder(tmp_path, **kw))
        return made[-1]

    yield make
    for h in made:
        h.stop()


def take(holders, **kw) -> Holder:
    h = holders(**kw)
    assert h.first_line() == "locked", h.proc.stderr.read1().decode() if h.proc.poll() is not None else ""
    return h


def free_within(holders, seconds: float) -> Holder:
    """Poll until another taker gets the lock (each try waits 0 s), at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        h = holders(wait=0)
        if h.first_line() == "locked":
            return h
        assert h.ended(SLACK) == BUSY_EXIT
        assert time.monotonic() < deadline, f"the lock was not free within {seconds} s"


def held_check(home: Path, token: str, then: str = "echo renamed\n", **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", remote.script(HELD_CHECK + then, **held_params(token))],
                          env=env(home), capture_output=True, text=True, timeout=SLACK + 10, **kw)


def test_the_lock_lives_in_a_directory_only_the_login_user_can_open(tmp_path, holders, kind):
    h = take(holders)
    lock_dir = tmp_path / ".cache/rkdeploy/lock"
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o700
    if kind == "flock":
        assert os.readlink(lock_dir / "holder") == h.token
        assert stat.S_IMODE((lock_dir / "board.lock").stat().st_mode) & 0o077 == 0
    else:
        assert (lock_dir / "board.d/token").read_text() == h.token + "\n"
        assert (lock_dir / "board.d/pid").read_text().strip() == str(h.proc.pid)
        assert stat.S_IMODE((lock_dir / "board.d").stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("kind", ["dir"], indirect=True)       # a flock is released by the kernel
def test_a_directory_lock_whose_holder_is_gone_is_taken_over(tmp_path, holders, kind):
    """Killed with SIGKILL (or a board rebooted): no kernel releases a directory; its holder's PID is gone (or
    runs something else: its command line lacks the token), so the next run takes it at once."""
    first = take(holders)
    first.proc.kill()
    first.proc.wait()
    assert (tmp_path / ".cache/rkdeploy/lock/board.d").is_dir()
    take(holders, wait=0)
    pid_file = tmp_path / ".cache/rkdeploy/lock/board.d/pid"
    pid_file.write_text(f"{os.getpid()}\n")                  # a live PID that is not a holder of this token
    take(holders, wait=0)


@pytest.mark.parametrize("kind", ["flock"], indirect=True)
def test_a_run_that_finds_the_lock_folder_flocked_still_takes_the_flock(tmp_path, holders, kind):
    """Every run tests whether `flock` is util-linux's on the lock folder. A lock found there (an older rkdeploy's
    test took it exclusively) must not send this run to the directory lock while another holds the flock: both
    would hold "the" lock."""
    lock_dir = tmp_path / ".cache/rkdeploy/lock"
    lock_dir.mkdir(parents=True, mode=0o700)
    other = subprocess.Popen(["flock", "-x", str(lock_dir), "sh", "-c", "echo held; read x"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline() == "held\n"
        h = take(holders)
        assert os.readlink(lock_dir / "holder") == h.token and not (lock_dir / "board.d").exists()
        assert held_check(tmp_path, h.token).stdout == "renamed\n"
    finally:
        other.stdin.close()
        other.wait(SLACK)
        other.stdout.close()


@pytest.mark.parametrize("kind", ["dir"], indirect=True)
@pytest.mark.parametrize("flock_says, lock", [("echo 'flock: unrecognized option: E' >&2; exit 1", "board.d"),
                                              ("echo 'flock: invalid option -- E' >&2; exit 64", "board.d"),
                                              ("exit 71", None)])
def test_only_a_flock_that_does_not_know_E_sends_a_run_to_the_directory_lock(tmp_path, holders, kind, flock_says,
                                                                            lock):
    """busybox's flock exits 1 on -E (a util-linux older than -E, 64): the directory lock. Any other failure of
    the test (util-linux's flock killed, out of memory) must not: another run may hold the flock. It is an
    error, and no lock is taken."""
    fake = Path(_PATH[0]) / "flock"
    fake.write_text(f"#!/bin/sh\n{flock_says}\n")
    fake.chmod(0o755)
    h = holders()
    lock_dir = tmp_path / ".cache/rkdeploy/lock"
    if lock:
        assert h.first_line() == "locked" and (lock_dir / lock).is_dir()
    else:
        assert h.first_line() == "" and h.ended(SLACK) == 1 and not (lock_dir / "board.d").exists()
        assert "cannot tell util-linux's flock from busybox's (flock exit 71" in h.proc.stderr.read().decode()


@pytest.mark.parametrize("kind", ["dir"], indirect=True)
def test_a_directory_lock_holder_lets_go_only_of_its_own_lock(tmp_path, holders, kind):
    """Three takers at once can leave a holder whose board.d was taken over by another run (one broke a lock it
    read as stale while a third took it). Letting go must not remove the other run's lock."""
    first = take(holders)
    token = tmp_path / ".cache/rkdeploy/lock/board.d/token"
    token.write_text(new_token() + "\n")                      # board.d is another run's now
    first.let_go()
    assert first.ended(SLACK) == 0
    assert token.exists() and not (tmp_path / ".cache/rkdeploy/lock/activate.d").exists()


@pytest.mark.parametrize("kind, tool", [("flock", "ln"), ("dir", "mkdir")], indirect=["kind"])
def test_a_lock_that_cannot_be_written_is_an_error_not_busy_and_not_held(tmp_path, holders, kind, tool):
    """A full disk (or a quota) when the holder records its token: said as such; never "locked" with no token
    (every later step would report the lock lost), never "another run holds it"."""
    lock_dir = tmp_path / ".cache/rkdeploy/lock"
    lock_dir.mkdir(parents=True, mode=0o700)
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / tool).write_text("#!/bin/sh\necho 'No space left on device' >&2\nexit 1\n")
    (fakes / tool).chmod(0o755)
    _PATH[:] = [f"{fakes}:{_PATH[0] if _PATH else os.environ['PATH']}"]
    h = holders()
    assert h.first_line() == "" and h.ended(SLACK) == 1
    assert "cannot write the board lock" in h.proc.stderr.read().decode()
    assert not (lock_dir / "board.d").exists() and not [p for p in lock_dir.iterdir() if ".new." in p.name]


def test_a_lock_directory_with_loose_permissions_is_tightened(tmp_path, holders):
    lock_dir = tmp_path / ".cache/rkdeploy/lock"
    lock_dir.mkdir(parents=True, mode=0o777)
    lock_dir.chmod(0o777)
    take(holders)
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o700


def test_a_second_taker_waits_then_gets_the_busy_exit_code(holders):
    take(holders)
    second = holders(wait=1)
    assert second.first_line() == ""
    assert second.ended(SLACK) == BUSY_EXIT
    assert time.monotonic() - second.started >= 0.9              # it did wait (flock -w 1, or 1 s of tries)


def test_end_of_input_releases_the_lock_at_once(holders):
    first = take(holders)
    first.let_go()
    assert first.ended(SLACK) == 0
    free_within(holders, SLACK)


def test_beats_keep_the_lock_and_their_absence_releases_it_after_the_timeout(holders):
    timeout = 1.0
    first = take(holders, timeout=timeout)
    until = time.monotonic() + 3 * timeout                       # three timeouts' worth of beats...
    while time.monotonic() < until:
        first.beat()
        silent_from = time.monotonic()                           # the last beat: then none, input left open
        assert first.ended(timeout / 4) is None                  # ...and it is held all along
    other = holders(wait=0)
    assert other.first_line() == "" and other.ended(SLACK) == BUSY_EXIT
    assert first.ended(timeout + SLACK) == 0
    assert time.monotonic() - silent_from >= timeout * 0.9       # not before the timeout had passed
    free_within(holders, SLACK)


def test_the_default_heartbeat_timeout_frees_a_board_within_the_15_s_the_readme_promises():
    """The tests above pass short timeouts as parameters; this pins the default every run uses (README: a
    killed run or a cut link frees the board within 15 s), on the board's side and on the PC's."""
    token = new_token()
    header = dict(line.split("=", 1) for line in lock_command(0, token).splitlines()
                  if re.match(r"rkl_\w+=", line))
    board_timeout = float(header["rkl_timeout"])
    assert HEARTBEAT_EVERY < board_timeout <= 15
    assert float(held_params(token)["rkl_timeout"]) == board_timeout
    lock = BoardLock(session=None)
    assert lock.heartbeat_timeout == board_timeout and 0 < lock.limit < board_timeout


def test_a_taker_gives_up_after_its_lock_wait_and_never_before(holders):
    """`flock -w`: a second taker neither blocks for good (no -w) nor gives up at once (-n, -w 0)."""
    take(holders)
    second = holders(wait=2)
    assert second.ended(1.5) is None                             # still waiting after 1.5 s of a 2 s wait
    assert second.ended(0.5 + SLACK) == BUSY_EXIT                # and then it gives up with the busy code
    assert time.monotonic() - second.started < 2 + SLACK


def test_the_held_check_passes_only_for_the_run_that_holds_the_lock(tmp_path, holders):
    first = take(holders)
    assert held_check(tmp_path, first.token).stdout == "renamed\n"
    other = held_check(tmp_path, new_token())                     # another run's token: not its lock
    assert other.returncode == LOCK_LOST_EXIT and "board lock was lost" in other.stderr and not other.stdout
    first.let_go()
    assert first.ended(SLACK) == 0
    gone = held_check(tmp_path, first.token)                      # its holder has let go
    assert gone.returncode == LOCK_LOST_EXIT and not gone.stdout


def test_a_holder_whose_beats_stop_cannot_let_go_while_an_activation_runs(tmp_path, holders):
    """The race a PC-side check cannot close: the activation passed its check, then the beats stop. The holder
    waits for the activation to finish before it lets go, so no other run can take the board in between."""
    timeout = 1.0
    first = take(holders, timeout=timeout)
    activation = subprocess.Popen(["/bin/sh", "-c", remote.script(HELD_CHECK + "echo checked\nread x\necho renamed\n",
                                                                  **held_params(first.token))],
                                  env=env(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert activation.stdout.readline() == "checked\n"
        first.let_go()                                            # and its heartbeat timeout passes too
        assert first.ended(timeout + 1) is None                   # still holding: the activation is under way
        other = holders(wait=0)
        assert other.first_line() == "" and other.ended(SLACK) == BUSY_EXIT
        activation.stdin.write("go\n")
        activation.stdin.close()
        assert activation.stdout.readline() == "renamed\n" and activation.wait(SLACK) == 0
    finally:
        if activation.poll() is None:
            activation.kill()
        activation.wait()
        activation.stdout.close()
    assert first.ended(SLACK) == 0
    free_within(holders, SLACK)
    assert held_check(tmp_path, first.token).returncode == LOCK_LOST_EXIT


def test_a_lock_token_is_checked():
    for bad in ("", "x'; reboot", "a" * 65, "short"):
        with pytest.raises(ValueError):
            lock_command(1, bad)


# -- BoardLock's own view, with an injected clock -----------------------------------------------------------
class FakeChannel:
    def __init__(self):
        self.closed = False
        self.ended = False
        self.sent = []

    def settimeout(self, t):
        pass

    def sendall(self, data):
        if self.closed:
            raise OSError("closed")
        self.sent.append(data)

    def exit_status_ready(self):
        return self.ended

    def recv_exit_status(self):
        return 0

    def recv_stderr_ready(self):
        return False

    def shutdown_write(self):
        pass

    def close(self):
        self.closed = True


class Session:
    def __init__(self):
        self.commands = 0
        self.settings = type("S", (), {"connect_timeout": 1.0})()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def board_lock(clock, every=3600.0):
    session = Session()
    lock = BoardLock(session, 1, channel=FakeChannel(), reader=io.BytesIO(b"locked\n"), token=new_token(),
                     clock=clock, heartbeat_every=every, heartbeat_timeout=15, margin=5)
    return session, lock


def wait_for(predicate, seconds=SLACK):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        threading.Event().wait(0.01)


def test_ensure_held_raises_after_a_stall_longer_than_the_timeout_minus_the_margin():
    clock = Clock()
    session, lock = board_lock(clock)
    with lock:
        assert BoardLock.of(session) is lock
        clock.now += 9.5
        lock.ensure_held()                                       # within 15 - 5 s: still ours
        clock.now += 1.5
        with pytest.raises(LockLost, match=r"may have been lost: no heartbeat for 11 s \(suspend/stop\?\); "
                                           r"nothing was activated"):
            lock.ensure_held()
    with pytest.raises(LockLost):
        BoardLock.of(session)                                    # released: no lock for this session any more


def test_a_late_beat_after_a_stall_does_not_make_the_lock_held_again():
    clock = Clock()
    session, lock = board_lock(clock, every=0.01)
    with lock:
        wait_for(lambda: len(lock.channel.sent) >= 2)
        lock.ensure_held()
        clock.now += 30                                          # suspended: no beat for 30 s, then one goes out
        sent = len(lock.channel.sent)
        wait_for(lambda: len(lock.channel.sent) > sent + 1)
        with pytest.raises(LockLost, match="no heartbeat for 30 s"):
            lock.ensure_held()


def test_ensure_held_raises_when_the_holders_channel_ended():
    clock = Clock()
    session, lock = board_lock(clock)
    with lock:
        lock.channel.ended = True
        with pytest.raises(LockLost, match="holder on the board ended"):
            lock.ensure_held()
