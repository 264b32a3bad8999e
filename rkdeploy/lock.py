"""A per-board lock shared by every task that changes a board (deploy, provision, rollback).

The lock is a `flock` held by a remote process for as long as rkdeploy keeps
sending it a heartbeat line over an SSH channel. Closing the channel releases
it at once; a killed rkdeploy or a cut link (which the board's sshd may not
notice for hours) releases it once HEARTBEAT_TIMEOUT passes without a beat.
No lock files to clean up by hand.

The lock file lives in a directory of the login user's own, mode 0700
(`~/.cache/rkdeploy/lock`), so no other local user can open it and hold the
lock to block every rollout (flock works on a file opened read-only). The cost:
two different login accounts on one board no longer exclude each other
(docs/hardening.md).

The holder can lose the lock without rkdeploy being killed: a PC that stops
sending beats for HEARTBEAT_TIMEOUT (suspend, SIGSTOP, a long stall) lets the
board's holder go and another run take the board. Two guards:

* on the PC, `ensure_held()` before each irreversible step raises `LockLost` when
  the last beat that was sent is older than the board's timeout minus a margin
  (or the holder's channel ended): the clear message, early;
* on the board, the steps that rename (`HELD_CHECK`) first take a second lock,
  `activate`, then check that the holder still holds the board lock and wrote
  this run's token. A holder that lets go (beats stopped, or the run is done)
  first takes `activate` and withdraws its token, and only then releases the
  board lock: an activation either runs completely while its holder still holds
  the board lock, or not at all. This closes the race that no PC-side check can.
"""
from __future__ import annotations

import secrets
import threading
import time
from typing import Callable

from . import remote

BUSY_EXIT = 75
LOCK_LOST_EXIT = 9
HEARTBEAT_EVERY = 4.0
HEARTBEAT_TIMEOUT = 15
LOST_MARGIN = 5.0          # ensure_held() gives up this long before the board's holder would
LOCK_DIR = "$HOME/.cache/rkdeploy/lock"   # shell text: the login user's own directory, mode 0700


class BoardBusy(RuntimeError):
    """Another rkdeploy run holds the board's lock."""


class LockLost(RuntimeError):
    """The board's lock may have passed to another run: nothing irreversible may happen now."""


# Boards without util-linux's flock (busybox: Debian's has no flock applet, others have one without -w/-E) get
# the same lock made of directories. `rkl_flock` tells them apart by how `flock -u -E 75` on the lock folder
# answers: 0 is util-linux; 1 (busybox's usage error for -E), 64 (a util-linux older than -E) or 127 (no flock)
# the directory lock; anything else an error. `-u` takes no lock, so two runs starting at once cannot refuse
# each other's test (one would take the directory lock while the other holds the flock). A lock is a
# directory (`board.d`, `activate.d`) holding its holder's PID and the run's token, made complete under a
# temporary name and renamed into place (so it never exists half-written); taken while a directory of that name
# exists whose holder still runs (its /proc/PID/cmdline carries the token: a reused PID, or a reboot, leaves it
# free). One whose holder is gone is renamed away (one breaker wins), checked again and removed. Kernel-held
# flocks need none of this: a killed holder releases them by itself. docs/hardening.md "The board lock".
DIR_LOCK = r"""rkl_flock() {
  rkl_r=0; flock -u -E 75 9 9< "$rkl_dir" > /dev/null 2>&1 || rkl_r=$?
  case $rkl_r in 0) return 0;; 1|64|127) return 1;; esac
  echo "cannot tell util-linux's flock from busybox's (flock exit $rkl_r: out of memory?): nothing was changed" >&2; exit 1
}
rkl_alive() {
  rkl_p=; rkl_t=; { IFS= read -r rkl_p < "$1/pid" && IFS= read -r rkl_t < "$1/token"; } 2>/dev/null || return 1
  [ -n "$rkl_t" ] && [ -r "/proc/$rkl_p/cmdline" ] || return 1
  case "$(tr '\000' ' ' < "/proc/$rkl_p/cmdline" 2>/dev/null)" in *"$rkl_t"*) return 0;; esac
  return 1
}
rkl_take() {
  rkl_left=$2
  while :; do
    rkl_new="$1.new.$$"
    rm -rf "$rkl_new"; mkdir "$rkl_new" && echo $$ > "$rkl_new/pid" && printf '%s\n' "$3" > "$rkl_new/token" || {
      rm -rf "$rkl_new"; echo "cannot write the board lock in $rkl_dir (no space left?): nothing was changed" >&2; return 2; }
    mv -T "$rkl_new" "$1" 2>/dev/null && return 0
    rm -rf "$rkl_new"
    if [ -d "$1" ] && ! rkl_alive "$1"; then
      if mv -T "$1" "$1.stale.$$" 2>/dev/null; then
        rkl_alive "$1.stale.$$" && mv -T "$1.stale.$$" "$1" 2>/dev/null
        rm -rf "$1.stale.$$"
      fi
      continue
    fi
    [ "$rkl_left" = forever ] || { [ "$rkl_left" -gt 0 ] 2>/dev/null || return 1; rkl_left=$((rkl_left - 1)); }
    sleep 1
  done
}
"""

# The holder: `flock` runs a shell that links `holder` to the run's token (a short symlink needs no data block:
# on a full disk a run can still take the lock to free space), says "locked" and reads beats; when they stop
# (end of input, or none for rkl_timeout s) it takes `activate` (waiting for an activation under way to
# finish), withdraws the token and exits, and only then does flock let the board lock go. Without flock: the
# same with DIR_LOCK's directories (board.d holds the token; a holder removes only its own).
_LOCK_BODY = r"""rkl_dir="$HOME/.cache/rkdeploy/lock"
umask 077
{ [ -n "$HOME" ] && { [ -d "$rkl_dir" ] || mkdir -p "$rkl_dir"; } && [ -O "$rkl_dir" ] && chmod 700 "$rkl_dir"; } || {
  echo "cannot make the board lock's directory $rkl_dir (the login user's own, mode 0700)" >&2; exit 1; }
""" + DIR_LOCK + r"""if rkl_flock; then
exec flock -w "$rkl_wait" -E "$rkl_busy" "$rkl_dir/board.lock" sh -c '
ln -sfn "$3" "$1/holder" || { echo "cannot write the board lock holder in $1: nothing was changed" >&2; exit 1; }
echo locked
while [ -n "$(timeout "$2" head -n 1)" ]; do :; done
exec flock "$1/activate" rm -f "$1/holder"' rkdeploy-lock "$rkl_dir" "$rkl_timeout" "$rkl_token"
fi
rkl_w=${rkl_wait%%.*}; [ "$rkl_w" = "$rkl_wait" ] || rkl_w=$((rkl_w + 1))
rkl_r=0; rkl_take "$rkl_dir/board.d" "$rkl_w" "$rkl_token" || rkl_r=$?
case $rkl_r in 0) ;; 1) exit "$rkl_busy";; *) exit 1;; esac
echo locked
while [ -n "$(timeout "$rkl_timeout" head -n 1)" ]; do :; done
rkl_take "$rkl_dir/activate.d" forever "$rkl_token" || exit 1    # board.d goes stale with this PID: free
rkl_mine=; { IFS= read -r rkl_mine < "$rkl_dir/board.d/token"; } 2>/dev/null || :
[ "$rkl_mine" = "$rkl_token" ] && rm -rf "$rkl_dir/board.d"     # taken over by another run: not ours to remove
rm -rf "$rkl_dir/activate.d"
"""

# For a script that renames under the board lock (with the parameter rkl_token, see held_params): from here to
# the script's end, this run's holder cannot let the lock go; if it already has, exit LOCK_LOST_EXIT. A script
# with an EXIT trap of its own sets `rkl_trap` to its commands first (the directory lock releases `activate.d`
# in that trap).
HELD_CHECK = (r"""rkl_dir="$HOME/.cache/rkdeploy/lock"
rkl_lost() { echo "the board lock was lost before this step (no heartbeat reached the board's holder for $rkl_timeout s: suspend or stop?): nothing was changed" >&2; exit %(lost)d; }
[ -O "$rkl_dir" ] || rkl_lost
""" + DIR_LOCK + r"""if rkl_flock; then
exec 8>> "$rkl_dir/activate"
flock 8 || rkl_lost
rkl_holder=$(readlink "$rkl_dir/holder" 2> /dev/null) || :
rkl_state=0; flock -n -E %(busy)d "$rkl_dir/board.lock" true || rkl_state=$?
[ "$rkl_holder" = "$rkl_token" ] && [ "$rkl_state" = %(busy)d ] || rkl_lost
else
rkl_take "$rkl_dir/activate.d" forever "$rkl_token" || exit 1
trap "${rkl_trap:-}"'rm -rf "$rkl_dir/activate.d"' EXIT
rkl_holder=; { IFS= read -r rkl_holder < "$rkl_dir/board.d/token"; } 2>/dev/null || :
[ "$rkl_holder" = "$rkl_token" ] && rkl_alive "$rkl_dir/board.d" || rkl_lost
fi
""").replace("%(lost)d", str(LOCK_LOST_EXIT)).replace("%(busy)d", str(BUSY_EXIT))


def new_token() -> str:
    return secrets.token_hex(8)


def lock_command(wait: float, token: str, timeout: float = HEARTBEAT_TIMEOUT) -> str:
    """Shell that takes the lock (waiting up to `wait` s), says "locked" and holds it while beats arrive
    (at most `timeout` s apart)."""
    return remote.script(_LOCK_BODY, rkl_wait=f"{wait:g}", rkl_busy=BUSY_EXIT, rkl_timeout=f"{timeout:g}",
                         rkl_token=_token(token))


def held_params(token: str, timeout: float = HEARTBEAT_TIMEOUT) -> dict:
    """The parameters HELD_CHECK refers to."""
    return {"rkl_token": _token(token), "rkl_timeout": f"{timeout:g}"}


def _token(token: str) -> str:
    if not (isinstance(token, str) and 8 <= len(token) <= 64 and token.isalnum()):
        raise ValueError(f"not a lock token: {token!r}")
    return token


class BoardLock:
    """`with BoardLock(session):` takes the board's lock on a channel of its own. A command that ends in
    `lock_command()` (deploy's probe does, to save a round trip) hands over its channel, line reader and token.

    `ensure_held()` before every irreversible step; `BoardLock.of(session)` finds the lock a session holds."""

    _held: dict[int, "BoardLock"] = {}        # id(session) -> the lock it holds, from __enter__ to release()

    def __init__(self, session, wait: float = 60.0, channel=None, reader=None, *, token: str | None = None,
                 clock: Callable[[], float] = time.monotonic, heartbeat_every: float = HEARTBEAT_EVERY,
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT, margin: float = LOST_MARGIN):
        if channel is not None and token is None:
            raise ValueError("a handed-over lock channel needs the token its lock_command() was made with")
        self.session = session
        self.wait = wait
        self.channel = channel
        self.reader = reader
        self.token = token or new_token()
        self.clock = clock
        self.heartbeat_every = heartbeat_every
        self.heartbeat_timeout = heartbeat_timeout
        self.limit = heartbeat_timeout - margin   # no beat for this long: the holder may be gone (LockLost)
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._last_beat: float | None = None       # when "locked" arrived or the last beat was sent
        self._longest_gap = 0.0                    # sticky: once too long, the lock may be gone for good
        self._send_failed = False

    @classmethod
    def of(cls, session) -> "BoardLock":
        lock = cls._held.get(id(session))
        if lock is None or lock.session is not session:
            raise LockLost("this step needs the board lock, and this run does not hold it: nothing was changed")
        return lock

    def __enter__(self) -> "BoardLock":
        if self.channel is None:
            self.session.commands += 1
            self.channel = self.session.conn.transport.open_session()
            self.channel.exec_command(lock_command(self.wait, self.token, self.heartbeat_timeout))
            self.reader = self.channel.makefile("rb")
        self.channel.settimeout(self.wait + self.session.settings.connect_timeout)
        line = self.reader.readline().decode(errors="replace").strip()   # board bytes, not trusted to be UTF-8
        if line != "locked":
            status = self.channel.recv_exit_status()
            said = self._stderr()
            self.channel.close()
            if status == BUSY_EXIT:
                raise BoardBusy(f"another rkdeploy run holds this board's lock (waited {self.wait:g} s): "
                                "try again when it is done")
            raise RuntimeError(f"could not take the board's lock (exit {status}): "
                               + (said or "is util-linux (flock) installed?"))
        with self._mutex:
            self._last_beat = self.clock()
        self._held[id(self.session)] = self
        threading.Thread(target=self._beat, daemon=True).start()
        return self

    def _stderr(self) -> str:
        try:
            data = b""
            while self.channel.recv_stderr_ready():
                data += self.channel.recv_stderr(4096)
            lines = data.decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        except Exception:  # noqa: BLE001 - only for the message
            return ""

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            self._note_gap()
            try:
                self.channel.sendall(b".\n")
            except Exception:  # noqa: BLE001 - the link is gone; the holder will time out
                self._send_failed = True
                return
            with self._mutex:
                self._last_beat = self.clock()

    def _note_gap(self) -> float:
        with self._mutex:
            if self._last_beat is None:
                return 0.0
            self._longest_gap = max(self._longest_gap, self.clock() - self._last_beat)
            return self._longest_gap

    def ensure_held(self) -> None:
        """Raise LockLost unless this run still holds the board lock as far as the PC can tell: the holder's
        channel is open and no gap between beats (up to now) came near the board's timeout. Even a late
        beat after a long stall does not make it held again: another run may have taken the board by then."""
        if self._last_beat is None or self._stop.is_set():
            raise LockLost("the board lock is not held: nothing was activated")
        gap = self._note_gap()
        if gap > self.limit:
            raise LockLost(f"the board lock may have been lost: no heartbeat for {gap:.0f} s (suspend/stop?); "
                           "nothing was activated")
        if self._send_failed or self.channel.closed or self.channel.exit_status_ready():
            raise LockLost("the board lock was lost: its holder on the board ended (link lost?); nothing was activated")

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Stop the beats and close the channel: the board's holder sees the end of its input and lets go."""
        self._stop.set()
        if self._held.get(id(self.session)) is self:
            self._held.pop(id(self.session), None)
        if self.channel is not None:
            try:
                self.channel.shutdown_write()
                self.channel.close()
            except Exception:  # noqa: BLE001 - a dead link releases the lock by itself
                pass
