"""The fleet runner: per-board results, failure classes, --fail-percent, retry lists (jobs without SSH)."""
import socket
import threading
from io import StringIO

import pytest
from rich.console import Console

from rkdeploy.connection import HostKeyRefused, SshSettings, Unreachable, open_connection
from rkdeploy.fleet import CHANGED, FAILED, OK, SKIPPED, UNREACHABLE, BoardResult, run_fleet
from rkdeploy.inventory import Board

BOARDS = [Board(name=f"b{i}", host="127.0.0.1") for i in range(6)]
QUIET = Console(file=StringIO())


def test_each_board_gets_its_own_result_in_inventory_order_and_errors_are_classified(tmp_path):
    def job(session):
        n = int(session.board.name[1:])
        if n == 1:
            raise Unreachable("no answer")
        if n == 2:
            raise HostKeyRefused("unknown host key")
        if n == 3:
            raise ValueError("bad")
        return BoardResult(session.board.name, CHANGED if n == 4 else OK)

    run = run_fleet(BOARDS, job, SshSettings(), label="t", parallel=3, console=QUIET, retry_dir=tmp_path)
    assert [r.board for r in run.results] == [b.name for b in BOARDS]
    assert [r.status for r in run.results] == [OK, UNREACHABLE, FAILED, FAILED, CHANGED, OK]
    assert "ValueError: bad" in run.results[3].error
    assert run.retry_file.read_text().split() == ["b1", "b2", "b3"]


def test_fail_percent_stops_starting_boards_but_finishes_those_running(tmp_path):
    def job(session):
        raise ValueError("boom")

    run = run_fleet(BOARDS, job, SshSettings(), label="t", parallel=1, fail_percent=30, console=QUIET)
    statuses = [r.status for r in run.results]
    assert statuses[:2] == [FAILED, FAILED] and set(statuses[2:]) == {SKIPPED}
    assert run.stopped_early


def test_one_slow_board_does_not_hold_back_the_others():
    release = threading.Event()
    finished = []

    def job(session):
        if session.board.name == "b0":
            assert release.wait(10)
        else:
            finished.append(session.board.name)
            if len(finished) == len(BOARDS) - 1:
                release.set()
        return BoardResult(session.board.name, OK)

    run = run_fleet(BOARDS, job, SshSettings(), label="t", parallel=2, console=QUIET)
    assert run.count(OK) == len(BOARDS) and finished[-1] != "b0"


def test_a_refused_port_is_reported_unreachable_after_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]      # bound, not listening: connections are refused
        board = Board(name="x", host="127.0.0.1", port=port)
        with pytest.raises(Unreachable, match="connection refused"):
            open_connection(board, SshSettings(connect_timeout=3, retries=2))


def test_a_terminal_sees_upload_bytes_and_speed_while_boards_send():
    screen = StringIO()
    shown = threading.Event()

    def job(session):
        for _ in range(4):
            session.on_sent(1_000_000)
        if session.board.name == "b0":
            shown.wait(5)                      # keep the display up until a refresh has drawn the bytes
        return BoardResult(session.board.name, CHANGED)

    def watch():
        while not shown.is_set():
            shown.wait(0.05)
            if "/24.0 MB" in screen.getvalue():
                shown.set()

    threading.Thread(target=watch, daemon=True).start()
    run = run_fleet(BOARDS, job, SshSettings(), label="deploy", parallel=6, transfer_bytes=24_000_000,
                    console=Console(file=screen, force_terminal=True, width=120))
    assert run.count(CHANGED) == len(BOARDS)
    assert shown.is_set(), screen.getvalue()[-300:]
