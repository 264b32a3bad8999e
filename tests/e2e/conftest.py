"""The lab fleet for end-to-end tests: its own lab name and subnet, always torn down."""
import contextlib
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.fleet import Lab
from tests.wheels import offline, offline_text

RKDEPLOY = str(Path(sys.executable).parent / "rkdeploy")
# The `rkdeploy` command imports the checkout under test (a worktree too), not whatever the venv was installed from.
_ROOT = str(Path(__file__).resolve().parents[2])
if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != _ROOT:
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))


def lab_available() -> str | None:
    if os.geteuid() != 0:
        return "the board lab needs root"
    for tool in ("ip", "unshare", "nsenter", "debootstrap", "qemu-aarch64-static", "aarch64-linux-gnu-gcc", "sshd"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            return f"the board lab needs {tool} (see README: .ci/run installs it)"
    return None


def need_lab() -> None:
    """Skip (or, under CI, fail: nothing that should run may skip there) when the lab cannot run here."""
    from tests.rockchip_files import in_ci

    reason = lab_available()
    if reason:
        (pytest.fail if in_ci() else pytest.skip)(reason)


@contextlib.contextmanager
def own_lab(prefix: str, **up):
    """A lab of the caller's own, always torn down: `prefix` (unique per use in tests/e2e) and this process's
    PID name it, so two suites may run at once; `up` goes to Lab.up (profiles=..., default the four)."""
    need_lab()
    lab = Lab(f"{prefix}{os.getpid() % 10000}")
    lab.down()                      # leftovers of a crashed earlier run
    try:
        lab.up(**up)
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def lab():
    """The four default boards as their profiles describe them, shared by the modules that leave them so
    (check, deploy, lab). A module that installs or removes SDK parts takes a lab of its own (own_lab)."""
    with own_lab("t") as lab:
        yield lab


def ssh(lab: Lab, board, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Plain OpenSSH with the lab's generated key and known_hosts, as a user would."""
    return subprocess.run(
        ["ssh", "-i", str(lab.key), "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"rock@{board.ip}", command],
        capture_output=True, text=True, timeout=timeout)


def cli_env() -> dict:
    """The environment of an `rkdeploy` run in a test: without the PC toolkit that scripts/test.sh exports for the
    real-toolkit tests (a configured toolkit adds findings to check); those tests pass it themselves."""
    return {k: v for k, v in os.environ.items() if k != "RKDEPLOY_TOOLKIT_PYTHON"}


SUDO_PROMPT = b"sudo password for the boards:"


def on_a_terminal(command: list[str], answer: str, cwd=None, timeout: float = 900) -> tuple[int, str]:
    """Run `command` under a terminal (script(1): getpass reads the controlling terminal) and type `answer` once
    the sudo password prompt is shown, as a person would. (exit code, what the terminal showed without CRs)."""
    proc = subprocess.Popen(["script", "-qec", shlex.join(command), "/dev/null"], cwd=cwd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=cli_env())
    seen, typed, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 1.0)[0]:
            block = os.read(proc.stdout.fileno(), 65536)
            if not block:
                break
            seen += block
            if not typed and SUDO_PROMPT in seen:
                proc.stdin.write(answer.encode() + b"\n")
                proc.stdin.flush()
                typed = True
    else:
        proc.kill()
        proc.wait()
        raise AssertionError(f"no end within {timeout} s: {seen[-2000:]!r}")
    assert typed, seen.decode(errors="replace")
    return proc.wait(30), seen.decode(errors="replace").replace("\r", "")


def rkdeploy(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([RKDEPLOY, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env=cli_env())


def dead_link_seconds() -> float:
    """How long after a cut link a run may take to report the board: the socket dies once data stays
    unacknowledged for TCP_USER_TIMEOUT (SshSettings.user_timeout_ms, from the keepalive setting), and the
    kernel notices only at its next retransmission, whose back-off grows to seconds; then the process exits."""
    from rkdeploy.connection import SshSettings

    return SshSettings().user_timeout_ms / 1000 + 10


@contextlib.contextmanager
def link_cut_once(lab: Lab, board, rate: str, listing: str, marker: str, what: str):
    """The board's bandwidth limited to `rate`; in the background its link is cut once `marker` shows in the
    output of `listing` (run as root on the board, e.g. an upload's temporary file). Yields the list that gets
    the cut's time; link and bandwidth are restored at the end."""
    from tests.lab import faults

    cut_at = []
    done = threading.Event()                   # the body ended (or failed) first: cut nothing after it

    def cut():
        seen = wait_until(lambda: "body ended" if done.is_set() else
                          marker in lab.board_root_exec(board, listing).stdout.decode(), 60, what)
        if seen is True:
            faults.cut_link(board)
            cut_at.append(time.monotonic())

    faults.limit_bandwidth(board, rate)
    watcher = threading.Thread(target=cut)
    try:
        watcher.start()
        yield cut_at
    finally:
        done.set()
        watcher.join()
        faults.restore_link(board)
        faults.clear_bandwidth(board)


def deploys_at_once(inventory: Path, host: str, models, name: str, cwd: Path | None = None) -> list[dict]:
    """`rkdeploy deploy` of each model to one board under one name, all started together; each run's board entry
    (its --json document's only board)."""
    procs = [subprocess.Popen([RKDEPLOY, "deploy", str(m), "--host", host, "--name", name, "--json",
                               "--inventory", str(inventory)], cwd=cwd, env=cli_env(), text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) for m in models]
    return [json.loads(p.communicate(timeout=300)[0])["boards"][0] for p in procs]


def wait_until(condition, timeout: float, what: str, every: float = 0.1):
    """Poll `condition` until it returns something true (returned), or fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"{what}: not seen within {timeout:g} s")


def inventory_copy(lab: Lab, tmp_path: Path, **settings) -> Path:
    """The lab's inventory with changed settings (e.g. its own known_hosts or timeouts)."""
    doc = yaml.safe_load(lab.inventory.read_text())
    doc["settings"].update(settings)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="session")
def toolkit_python():
    """A virtualenv holding the real rknn-toolkit2 2.3.2 package, installed without its (multi-GB)
    dependencies: rkdeploy only reads its metadata and never imports it."""
    from tests.lab.host import CACHE_DIR

    venv = CACHE_DIR / "toolkit-venv-2.3.2"
    python = venv / "bin/python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *offline(), "rknn-toolkit2==2.3.2"],
                       check=True)                      # from the local wheel cache (tests/wheels.py)
        (venv / ".complete").touch()
    return str(python)


def bundle_runtime() -> Path:
    """The aarch64 librknnrt.so the `bundles` fixture imports: what a provisioned board must then hold."""
    from tests.lab.sdk import standin_runtime

    return standin_runtime("2.3.2")


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """A working directory holding bundles/2.3.2, imported the way a user imports an SDK checkout: from
    Rockchip's real 2.3.2 tree (real rknn_server, scripts, headers and lite2 wheel, plus real dependencies
    from the package index) with the lab's labelled stand-in aarch64 librknnrt.so (bundle_runtime()), which
    that tree lacks. Without Rockchip's files (outside CI), from the lab's all-stand-in 2.3.2 tree."""
    from tests import rockchip_files
    from tests.lab.sdk import cached_tree

    work = tmp_path_factory.mktemp("rkdeploy-work")
    tree = rockchip_files.sdk_tree("rknn-toolkit2-v2.3.2")
    if not tree.exists() and rockchip_files.in_ci():
        pytest.fail(f"Rockchip's SDK tree is not at {tree} (RKDEPLOY_ROCKCHIP_DIR)")
    args = [str(tree if tree.exists() else cached_tree("2.3.2")), "--runtime", f"aarch64={bundle_runtime()}"]
    proc = subprocess.run([RKDEPLOY, "bundle.import", *args, "--python", "3.11", "--pip-options", offline_text()],
                          cwd=work,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work


def rkdeploy_in(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([RKDEPLOY, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=cli_env())


@pytest.fixture(scope="session")
def standin_toolkit():
    """A virtualenv with the lab's labelled stand-in of rknn-toolkit2 (tests/lab/toolkit_standin)."""
    from tests.lab.host import CACHE_DIR

    source = Path(__file__).parents[1] / "lab/toolkit_standin"
    stamp = str(max(p.stat().st_mtime_ns for p in source.rglob("*") if p.is_file()))
    venv = CACHE_DIR / "toolkit-standin-venv"
    python = venv / "bin/python"
    if not (venv / ".complete").exists() or (venv / ".complete").read_text() != stamp:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        build = venv.with_name("toolkit-standin-src")       # build outside the source tree (no build/ in git)
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(source, build, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        subprocess.run([str(python), "-m", "pip", "install", "-q", *offline(), str(build)], check=True)
        (venv / ".complete").write_text(stamp)
    return str(python)
