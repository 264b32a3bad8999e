"""The fleet runner: per-board results, failure classes, --fail-percent, retry lists (jobs without SSH)."""
import contextlib
import socket
import struct
import threading
import time
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
        if session.board.name == "b0":           # holds one of the two slots until every other board is done
            assert release.wait(10)
        with lock:
            finished.append(session.board.name)
            if len(finished) == len(BOARDS) - 1:
                release.set()
        return BoardResult(session.board.name, OK)

    lock = threading.Lock()
    run = run_fleet(BOARDS, job, SshSettings(), label="t", parallel=2, console=QUIET)
    assert run.count(OK) == len(BOARDS)
    assert finished[-1] == "b0" and sorted(finished) == sorted(b.name for b in BOARDS)


def test_a_refused_port_is_reported_unreachable_after_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]      # bound, not listening: connections are refused
        board = Board(name="x", host="127.0.0.1", port=port)
        with pytest.raises(Unreachable, match="connection refused"):
            open_connection(board, SshSettings(connect_timeout=3, retries=2))


def test_boards_that_accept_tcp_and_never_send_a_banner_are_all_reported_as_such_within_the_connect_timeout():
    """paramiko words this two ways, by which of its timers runs out first (one of them "No existing session");
    every board of a parallel run must get the same, true reason."""
    held = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)

        def accept():
            with contextlib.suppress(OSError):
                while True:
                    held.append(listener.accept()[0])
        threading.Thread(target=accept, daemon=True).start()
        settings = SshSettings(connect_timeout=2, retries=2)

        def connect(i):
            started = time.monotonic()
            with pytest.raises(Unreachable) as raised:
                open_connection(Board(name=f"b{i}", host="127.0.0.1", port=listener.getsockname()[1]), settings)
            return str(raised.value), time.monotonic() - started

        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(connect, range(16)))
    for sock in held:
        sock.close()
    for message, seconds in outcomes:
        assert "no SSH banner within 2 s: the port accepts connections but no SSH server answers" in message
        assert seconds < settings.connect_timeout + 2      # its deadline, plus paramiko's 0.1 s polling and thread start


# -- an in-process SSH server: the real BoardSession/open_connection code against scripted boards ----------

import paramiko  # noqa: E402

from rkdeploy.connection import changed_key_message  # noqa: E402
from rkdeploy.fleet import classify  # noqa: E402
from rkdeploy.session import BoardSession, OutputTooLarge  # noqa: E402
from rkdeploy.connection import LinkLost  # noqa: E402


class _Board(paramiko.ServerInterface):
    """Each exec request is a scripted behaviour: `out N`, `err N`, `bytes`, `die`."""

    def __init__(self):
        self.transport = None

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self._run, args=(channel, command.decode()), daemon=True).start()
        return True

    def _run(self, channel, command):
        time.sleep(0.1)          # let the transport answer the exec request first (paramiko servers race on it)
        verb, _, arg = command.partition(" ")
        block = b"x" * 65536
        if verb in ("out", "err"):
            send = channel.sendall if verb == "out" else channel.sendall_stderr
            try:
                for _ in range(int(arg) // len(block)):
                    send(block)
            except OSError:                       # the client stopped reading and closed the channel
                return
        elif verb == "bytes":
            channel.sendall(b"model_current=d\xe9tecteur|versions/abababababab.rknn\nend=ok\n")
            channel.sendall_stderr(b"caf\xe9 \xff\n")
        elif verb == "sink":                    # read stdin to its end, say how many bytes arrived
            total = 0
            while True:
                data = channel.recv(65536)
                if not data:
                    break
                total += len(data)
            channel.sendall(f"{total}\n".encode())
        elif verb == "die":
            channel.sendall(b"uname=box 6.1 aarch64\n")
            time.sleep(0.2)
            self.transport.close()                # the link goes before the exit status
            return
        channel.send_exit_status(0)
        channel.close()


@contextlib.contextmanager
def _ssh_server(tmp_path, drop_first: int = 0):
    """An in-process SSH server on 127.0.0.1 (yields board, settings, accepted connections): the first
    `drop_first` TCP connections are reset at once (RST, before any banner), the rest speak SSH."""
    host_key = paramiko.ECDSAKey.generate()
    client_key = paramiko.ECDSAKey.generate()
    client_key.write_private_key_file(str(tmp_path / "id"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    transports = []
    accepted = []

    def serve():
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            accepted.append(time.monotonic())
            if len(accepted) <= drop_first:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()                      # a reset, as a board whose sshd is (re)starting gives
                continue
            t = paramiko.Transport(sock)
            t.add_server_key(host_key)
            server = _Board()
            server.transport = t
            t.start_server(server=server)
            transports.append(t)

    threading.Thread(target=serve, daemon=True).start()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    board = Board(name="fake", host="127.0.0.1", port=port, key=str(tmp_path / "id"))
    try:
        yield board, SshSettings(known_hosts=known, connect_timeout=5, command_timeout=10, max_output_mib=1), accepted
    finally:
        listener.close()
        for t in transports:
            t.close()


@pytest.fixture
def ssh_board(tmp_path):
    with _ssh_server(tmp_path) as (board, settings, _):
        yield board, settings


def _session(ssh_board):
    board, settings = ssh_board
    return BoardSession(board, settings)


@pytest.mark.parametrize("stream", ["out", "err"])
def test_a_board_sending_more_than_the_cap_on_one_stream_is_stopped_with_a_clear_error(ssh_board, stream):
    session = _session(ssh_board)
    try:
        with pytest.raises(OutputTooLarge) as err:
            session.run(f"{stream} {64 * 1024 * 1024}")      # 64 MiB against a 1 MiB cap
        name = "stdout" if stream == "out" else "stderr"
        assert str(err.value).startswith(f"the board sent more than 1 MiB on {name} for one command")
        assert session.run("out 131072").stdout == "x" * 131072    # the connection still serves the next command
        assert classify(err.value)[0] == FAILED
    finally:
        session.close()


def test_output_that_is_not_utf8_is_decoded_with_replacement_characters_and_still_parses(ssh_board):
    from rkdeploy.probe import parse_probe

    session = _session(ssh_board)
    try:
        result = session.run("bytes")
    finally:
        session.close()
    assert result.return_code == 0 and result.stderr == "caf\ufffd \ufffd\n"
    assert parse_probe(result.stdout).models_current == {"d\ufffdtecteur": "versions/abababababab.rknn"}


def test_a_link_lost_during_a_command_is_link_lost_and_unreachable_not_a_bad_shell(ssh_board):
    session = _session(ssh_board)
    try:
        with pytest.raises(LinkLost) as err:
            session.run("die")
    finally:
        session.close()
    status, message = classify(err.value, ssh_board[0])
    assert status == UNREACHABLE and "ended during a command, before its exit status" in message
    assert f"127.0.0.1:{ssh_board[0].port}" in message


def test_a_changed_host_key_on_another_port_names_the_bracketed_host_in_the_ssh_keygen_hint(ssh_board, tmp_path):
    board, settings = ssh_board
    other = paramiko.ECDSAKey.generate()
    settings.known_hosts.write_text(f"[127.0.0.1]:{board.port} {other.get_name()} {other.get_base64()}\n")
    with pytest.raises(HostKeyRefused) as err:
        open_connection(board, settings)
    message = str(err.value)
    assert f"ssh-keygen -R '[127.0.0.1]:{board.port}' -f {settings.known_hosts}" in message
    assert "CHANGED" in message


def test_the_ssh_keygen_hint_is_plain_on_port_22_and_quoted_for_the_shell():
    assert changed_key_message("cam-01", 22, "A", "B", __import__("pathlib").Path("/k h")).endswith(
        "ssh-keygen -R cam-01 -f '/k h'")


@pytest.mark.parametrize("error,needle", [
    (EOFError(), "connection lost to 10.0.0.5:2222: EOFError, without a message"),
    (paramiko.SSHException(""), "connection lost to 10.0.0.5:2222: SSHException, without a message"),
    (ConnectionResetError(), "connection lost to 10.0.0.5:2222: ConnectionResetError, without a message"),
    (EOFError("socket closed"), "connection lost to 10.0.0.5:2222: socket closed (EOFError)"),
    (TimeoutError(), "timed out to 10.0.0.5:2222"),
    (Unreachable(""), "Unreachable: no answer to 10.0.0.5:2222"),
    (KeyError(), "KeyError (no message) on cam"),
])
def test_a_lost_connection_always_has_a_message_naming_the_exception_and_the_board(error, needle):
    status, message = classify(error, Board(name="cam", host="10.0.0.5", port=2222))
    assert needle in message
    assert not message.rstrip().endswith(":")


def test_concurrent_runs_write_their_own_retry_files_and_latest_points_at_the_last(tmp_path):
    from rkdeploy.inventory import Inventory

    def job(session):
        raise Unreachable("no answer")

    runs = []
    threads = [threading.Thread(target=lambda: runs.append(run_fleet(
        BOARDS[:2], job, SshSettings(), label="deploy model", console=QUIET, retry_dir=tmp_path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = {r.retry_file for r in runs}
    assert len(files) == 4 and all(f.read_text().split() == ["b0", "b1"] for f in files)
    assert all(f.name.startswith("retry-deploy-model-") and f.name.endswith(".txt") for f in files)
    latest = tmp_path / "retry-deploy-model-latest.txt"
    assert latest.resolve() in {f.resolve() for f in files}
    inv = Inventory(path=tmp_path / "hosts.yaml", boards={b.name: b for b in BOARDS}, settings={})
    assert [b.name for b in inv.select(hosts=f"@{latest}")] == ["b0", "b1"]
    for f in files:
        assert [b.name for b in inv.select(hosts=f"@{f}")] == ["b0", "b1"]


def test_a_retry_file_name_carries_the_time_and_the_process(tmp_path):
    import os

    run = run_fleet(BOARDS[:1], lambda s: (_ for _ in ()).throw(ValueError("x")), SshSettings(), label="a/b c",
                    console=QUIET, retry_dir=tmp_path)
    assert run.retry_file.parent == tmp_path
    assert run.retry_file.name.startswith("retry-a-b-c-") and f"-{os.getpid()}" in run.retry_file.name


def test_send_file_counts_every_byte_and_the_upload_progress_shows_the_full_amount(ssh_board, tmp_path):
    """Catches an upload progress that never counts a byte: the bytes reported through on_sent must add up to
    the file's size, and the fleet's upload line must end at "size/size MB" (not "0.0/size MB")."""
    import os

    board, settings = ssh_board
    size = 3 * 1024 * 1024 + 12345                 # several 256 KiB chunks and a short last one
    payload = tmp_path / "model.rknn"
    payload.write_bytes(os.urandom(size))
    reported = []

    def job(session):
        fleet_on_sent = session.on_sent

        def on_sent(delta):
            reported.append(delta)
            fleet_on_sent(delta)

        session.on_sent = on_sent
        result = session.send_file(str(payload), "sink")
        assert result.return_code == 0 and result.stdout.strip() == str(size)   # the board got every byte
        return BoardResult(session.board.name, CHANGED)

    screen = StringIO()
    run = run_fleet([board], job, settings, label="deploy", parallel=1, transfer_bytes=size,
                    console=Console(file=screen, force_terminal=True, width=120))
    assert run.results[0].status == CHANGED, run.results[0].error
    assert sum(reported) == size and all(d > 0 for d in reported) and len(reported) > 1
    assert run.results[0].bytes_sent == size
    full = f"{size / 1e6:.1f}/{size / 1e6:.1f} MB"
    assert full in screen.getvalue(), screen.getvalue()[-400:]


def test_the_fleet_upload_line_counts_what_the_sessions_report():
    """The runner's side alone: every byte a session reports lands in the upload line's total."""
    screen = StringIO()

    def job(session):
        for _ in range(4):
            session.on_sent(1_000_000)
        return BoardResult(session.board.name, CHANGED)

    run = run_fleet(BOARDS, job, SshSettings(), label="deploy", parallel=6, transfer_bytes=24_000_000,
                    console=Console(file=screen, force_terminal=True, width=120))
    assert run.count(CHANGED) == len(BOARDS)
    assert "24.0/24.0 MB" in screen.getvalue(), screen.getvalue()[-400:]


def test_a_connection_reset_twice_is_retried_and_reached_within_the_connect_timeout(tmp_path):
    """Catches a connection that never retries: the first two TCP connections are reset (sshd restarting),
    the third speaks SSH; open_connection with the default retries must get through, within connect_timeout."""
    with _ssh_server(tmp_path, drop_first=2) as (board, settings, accepted):
        assert settings.retries == SshSettings().retries >= 2
        started = time.monotonic()
        conn = open_connection(board, settings)
        try:
            assert conn.transport.is_active()
        finally:
            conn.close()
        assert len(accepted) == 3, accepted
        assert time.monotonic() - started < settings.connect_timeout
