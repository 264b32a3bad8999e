"""A per-board lock shared by every task that changes a board (deploy, provision, rollback).

The lock is a `flock` held by a remote process for as long as rkdeploy keeps
sending it a heartbeat line over an SSH channel. Closing the channel releases
it at once; a killed rkdeploy or a cut link (which the board's sshd may not
notice for hours) releases it once HEARTBEAT_TIMEOUT passes without a beat.
No lock files to clean up by hand.
"""
from __future__ import annotations

import shlex
import threading

LOCK_FILE = "rkdeploy.lock"
BUSY_EXIT = 75
HEARTBEAT_EVERY = 4.0
HEARTBEAT_TIMEOUT = 15


class BoardBusy(RuntimeError):
    """Another rkdeploy run holds the board's lock."""


def lock_command(wait: float) -> str:
    """Shell that takes the lock (waiting up to `wait` s), says "locked" and holds it while beats arrive."""
    return ('l=/run/lock; { [ -d "$l" ] && [ -w "$l" ]; } || l=/tmp; '
            f'exec flock -w {wait:g} -E {BUSY_EXIT} "$l"/{shlex.quote(LOCK_FILE)} '
            f"sh -c 'echo locked; while [ -n \"$(timeout {HEARTBEAT_TIMEOUT} head -n 1)\" ]; do :; done'")


class BoardLock:
    """`with BoardLock(session):` takes the board's lock on a channel of its own. A command that ends in
    `lock_command()` (deploy's probe does, to save a round trip) hands over its channel and line reader."""

    def __init__(self, session, wait: float = 60.0, channel=None, reader=None):
        self.session = session
        self.wait = wait
        self.channel = channel
        self.reader = reader
        self._stop = threading.Event()

    def __enter__(self) -> "BoardLock":
        if self.channel is None:
            self.session.commands += 1
            self.channel = self.session.conn.transport.open_session()
            self.channel.exec_command(lock_command(self.wait))
            self.reader = self.channel.makefile("r")
        self.channel.settimeout(self.wait + self.session.settings.connect_timeout)
        line = self.reader.readline().strip()
        if line != "locked":
            status = self.channel.recv_exit_status()
            self.channel.close()
            if status == BUSY_EXIT:
                raise BoardBusy(f"another rkdeploy run holds this board's lock (waited {self.wait:g} s): "
                                "try again when it is done")
            raise RuntimeError(f"could not take the board's lock (flock exit {status}; is util-linux installed?)")
        threading.Thread(target=self._beat, daemon=True).start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                self.channel.sendall(b".\n")
            except Exception:  # noqa: BLE001 - the link is gone; the holder will time out
                return

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Stop the beats and close the channel: the board's holder sees the end of its input and lets go."""
        self._stop.set()
        if self.channel is not None:
            try:
                self.channel.shutdown_write()
                self.channel.close()
            except Exception:  # noqa: BLE001 - a dead link releases the lock by itself
                pass
