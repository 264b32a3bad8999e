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


class BoardLock:
    def __init__(self, session, wait: float = 60.0):
        self.session = session
        self.wait = wait
        self.channel = None
        self._stop = threading.Event()

    def __enter__(self) -> "BoardLock":
        command = (
            'l=/run/lock; { [ -d "$l" ] && [ -w "$l" ]; } || l=/tmp; '
            f'exec flock -w {self.wait:g} -E {BUSY_EXIT} "$l"/{shlex.quote(LOCK_FILE)} '
            f"sh -c 'echo locked; while [ -n \"$(timeout {HEARTBEAT_TIMEOUT} head -n 1)\" ]; do :; done'")
        self.session.commands += 1
        self.channel = self.session.conn.transport.open_session()
        self.channel.settimeout(self.wait + self.session.settings.connect_timeout)
        self.channel.exec_command(command)
        line = self.channel.makefile("r").readline().strip()
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
        self._stop.set()
        if self.channel is not None:
            try:
                self.channel.shutdown_write()
                self.channel.close()
            except Exception:  # noqa: BLE001 - a dead link releases the lock by itself
                pass
