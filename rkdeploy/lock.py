"""A per-board lock shared by every task that changes a board (deploy, provision, rollback).

The lock is a `flock` held by a remote process for as long as an SSH channel
stays open: closing the channel releases it, and so does a dead link or a
killed rkdeploy, because sshd then ends the process. No stale lock files.
"""
from __future__ import annotations

import shlex

LOCK_FILE = "rkdeploy.lock"
BUSY_EXIT = 75


class BoardBusy(RuntimeError):
    """Another rkdeploy run holds the board's lock."""


class BoardLock:
    def __init__(self, session, wait: float = 60.0):
        self.session = session
        self.wait = wait
        self.channel = None

    def __enter__(self) -> "BoardLock":
        command = (
            'l=/run/lock; { [ -d "$l" ] && [ -w "$l" ]; } || l=/tmp; '
            f'exec flock -w {self.wait:g} -E {BUSY_EXIT} "$l"/{shlex.quote(LOCK_FILE)} '
            "sh -c 'echo locked; exec cat > /dev/null'")
        self.session.commands += 1
        self.channel = self.session.conn.transport.open_session()
        self.channel.settimeout(self.wait + self.session.settings.connect_timeout)
        self.channel.exec_command(command)
        line = self.channel.makefile("r").readline().strip()
        if line != "locked":
            status = self.channel.recv_exit_status()
            self.channel.close()
            if status == BUSY_EXIT:
                raise BoardBusy(f"another rkdeploy run has held this board's lock for {self.wait:g} s: "
                                "try again when it is done")
            raise RuntimeError(f"could not take the board's lock (flock exit {status}; is util-linux installed?)")
        return self

    def __exit__(self, *exc) -> None:
        if self.channel is not None:
            self.channel.shutdown_write()
            self.channel.close()
