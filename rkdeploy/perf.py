"""`inv perf`: connected-board eval_perf / eval_memory for every selected board, from the PC.

Per board: a preflight over SSH (toolkit/server/runtime parity, rknn_server running, the model's
platform, the adb device listed by the toolkit's own adb), the board's CPU/NPU/DDR governors saved,
then the worker (perf_worker.py) in the toolkit's Python, then the governors restored, because
eval_perf(fix_freq=True) changes them and never puts them back (RKNN-NOTES.md §5).

The toolkit forwards one PC-side abstract socket, @transfer_proxy, whatever the board, and an abstract
socket name is one per network namespace (docs/toolkit-and-adb.md §5). So each worker for a network adb
device (IP:PORT) runs in its own user + network + PID namespace (`unshare --user --map-root-user --net
--pid`, no root needed), with its own loopback, its own adb server and its own @transfer_proxy; the board is
reached through a relay: in the namespace TCP 127.0.0.1:7555 → a unix socket in a private 0700 directory
(filesystem paths cross network namespaces) → here, in the PC's namespace, a thread connecting to the board's
IP:PORT. Boards then run in parallel (bounded by --parallel). Where that cannot work (USB serials: one adb
server owns the USB bus; no unprivileged user namespaces; RKDEPLOY_PERF_ISOLATION=lock), workers run one at
a time on this PC under a file lock, so separate rkdeploy processes take turns too.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .gather import gather_facts
from .diagnose import Diagnosis, diagnose
from .socs import runs_on, socs_for
from .fleet import FAILED, OK, BoardResult
from .session import BoardSession, RootUnavailable
from .perf_parse import MemoryResult, PerfResult, parse_memory, parse_perf
from .server import manager_of, server_dir_of, server_script
from .remote import script as shell_script
from .rknn_model import RknnModel
from .toolkit import run_json_worker, toolkit_errors
from .versions import same_release

WORKER = Path(__file__).with_name("perf_worker.py")
GOVERNOR_GLOBS = ("/sys/devices/system/cpu/cpufreq/policy*/scaling_governor", "/sys/class/devfreq/*/governor")


class PerfError(RuntimeError):
    pass


@dataclass
class PerfRun:
    board: str
    model: str
    ok: bool = False
    stage: str = ""
    error: str = ""
    perf: PerfResult | None = None
    memory: MemoryResult | None = None
    diagnoses: list[Diagnosis] = field(default_factory=list)
    raw_path: str = ""
    governors_restored: int = 0
    toolkit_errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)     # preflight, toolkit (worker), governors

    def to_dict(self) -> dict:
        return {"board": self.board, "model": self.model, "ok": self.ok, "stage": self.stage, "error": self.error or None,
                "perf": self.perf.to_dict() if self.perf else None,
                "memory": self.memory.to_dict() if self.memory else None,
                "diagnoses": [d.__dict__ for d in self.diagnoses], "raw": self.raw_path,
                "governors_restored": self.governors_restored, "toolkit_errors": self.toolkit_errors,
                "seconds": self.seconds}


NETWORK_ID = re.compile(r"^[\w.-]+:\d+$")     # IP:PORT or HOST:PORT: network adb, needs `adb connect`


class AdbServer:
    """The toolkit's bundled adb with a private adb server for one rkdeploy run.

    ANDROID_ADB_SERVER_PORT (which the toolkit's adb inherits, docs/toolkit-and-adb.md §3) keeps this run
    apart from any other adb server on the PC; the server is killed by close(). The toolkit does not
    `adb connect` a network device id itself, so connect() does, before the toolkit runs.
    """

    def __init__(self, adb: str, port: int | None = None):
        self.adb = adb
        self.port = port or _free_port()
        self.env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(self.port)}

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self.adb, *args], capture_output=True, text=True, timeout=timeout, env=self.env,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess([self.adb, *args], 124, "", f"adb {' '.join(args)}: no answer "
                                                                          f"within {timeout:g} s")

    def start(self) -> None:
        """Once, before the parallel preflights: two adb clients starting one server race for its port."""
        proc = self.run("start-server", timeout=60)
        if proc.returncode != 0:
            raise PerfError(f"the toolkit's adb could not start its server on port {self.port}: "
                            f"{(proc.stderr or proc.stdout).strip()[-500:]}")

    def connect(self, device: str) -> str:
        """`adb connect`; returns what adb said when it did not connect ('' when it did)."""
        proc = self.run("connect", device)
        said = (proc.stdout + proc.stderr).strip()
        if proc.returncode == 0 and ("connected to" in said and "unable" not in said and "failed" not in said):
            return ""
        return said or f"adb connect exited {proc.returncode}"

    def devices(self) -> list[str]:
        out = self.run("devices").stdout.splitlines()
        return [line.split()[0] for line in out[1:] if line.strip() and "\tdevice" in line]

    def close(self) -> None:
        self.run("kill-server", timeout=15)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def adb_devices(adb: str) -> list[str]:
    return AdbServer(adb, port=int(os.environ.get("ANDROID_ADB_SERVER_PORT", 5037))).devices()


def read_governors(session: BoardSession) -> dict[str, str]:
    script = "for f in " + " ".join(GOVERNOR_GLOBS) + "; do [ -r \"$f\" ] && echo \"$f=$(cat \"$f\")\"; done; true"
    out = session.run(script).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def restore_governors(session: BoardSession, saved: dict[str, str]) -> int:
    if not saved:
        return 0
    # Each governor file and value a quoted parameter (f_N, v_N): the body is fixed text and numbers.
    params = {}
    for i, (k, v) in enumerate(saved.items()):
        params |= {f"f_{i}": k, f"v_{i}": v}
    body = "".join(f'echo "$v_{i}" > "$f_{i}" 2>/dev/null || true\n' for i in range(len(saved)))
    try:
        session.run_as_root(shell_script(body, **params))
    except RootUnavailable:
        return 0                       # reported as governors not restored; the runs' own outcome stands
    return len(saved)


_pc_lock_path = Path(os.environ.get("RKDEPLOY_CACHE", Path.home() / ".cache" / "rkdeploy")) / "transfer_proxy.lock"

NETNS_PORT = 7555        # the relay's port inside a worker's namespace: outside adb's emulator scan (5555-5585)
UNSHARE = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"]
_isolation: str | None = None
_isolation_lock = threading.Lock()


def isolation() -> str:
    """'netns' when this PC can give each toolkit run its own user + network namespace (tried once per
    process), else 'lock'. RKDEPLOY_PERF_ISOLATION=lock|netns forces one (netns: fail loudly if it cannot)."""
    global _isolation
    with _isolation_lock:
        if _isolation is None:
            forced = os.environ.get("RKDEPLOY_PERF_ISOLATION", "").strip()
            if forced == "lock":
                _isolation = "lock"
            else:
                try:
                    ok = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=30,
                                        stdin=subprocess.DEVNULL).returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    ok = False
                if not ok and forced == "netns":
                    raise PerfError("RKDEPLOY_PERF_ISOLATION=netns but `unshare --user --map-root-user --net` "
                                    "fails here (unprivileged user namespaces disabled?)")
                _isolation = "netns" if ok else "lock"
        return _isolation


class BoardRelay:
    """PC side of a namespaced worker's way to its board: a unix socket in a private directory; each connection
    to it is joined to a new TCP connection to the board's adbd (host, port), bytes copied both ways."""

    def __init__(self, host: str, port: int, directory: Path, connect_timeout: float = 10.0):
        self.address = (host, port)
        self.path = str(directory / "board.sock")
        self.connect_timeout = connect_timeout
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"relay {host}:{port}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inner, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._join, args=(inner,), daemon=True).start()

    def _join(self, inner: socket.socket) -> None:
        try:
            outer = socket.create_connection(self.address, timeout=self.connect_timeout)
            outer.settimeout(None)
        except OSError:
            inner.close()            # adb in the namespace sees the connection refused/closed, as without a relay
            return
        with self._guard:
            if self._closed:
                inner.close(), outer.close()
                return
            self._open.update((inner, outer))
        threading.Thread(target=_pump, args=(outer, inner), daemon=True).start()
        _pump(inner, outer)

    def close(self) -> None:
        with self._guard:
            self._closed = True
            live = list(self._open)
        for s in [self._listener, *live]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def run_worker(python: str, request: dict, timeout: float, env: dict | None = None, *,
               adb: str | None = None) -> dict:
    """Run the worker in the toolkit's Python. With `adb` (the toolkit's bundled adb) and a network device id
    (IP:PORT) and isolation() == 'netns': in its own namespaces through a BoardRelay, in parallel with others.
    Otherwise one toolkit run at a time on this PC (@transfer_proxy is one name per network namespace); `env`
    (an AdbServer's) selects the adb server the toolkit's adb talks to."""
    device = request.get("device_id") or ""
    if adb and NETWORK_ID.match(device) and isolation() == "netns":
        return _run_isolated(python, request, timeout, env, adb)
    _pc_lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(_pc_lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return run_json_worker([python, str(WORKER)], request, timeout, env)


def _run_isolated(python: str, request: dict, timeout: float, env: dict | None, adb: str) -> dict:
    host, port = request["device_id"].rsplit(":", 1)
    with tempfile.TemporaryDirectory(prefix="rkdeploy-perf-") as tmp:     # mode 0700: only this user
        relay = BoardRelay(host, int(port), Path(tmp))
        try:
            child_env = {k: v for k, v in (env or os.environ).items() if k != "ANDROID_ADB_SERVER_PORT"}
            # TMPDIR: the namespaced adb server's log ($TMPDIR/adb.<uid>.log) is this run's own
            child_env.update(TMPDIR=tmp)
            inner = {**request, "device_id": f"127.0.0.1:{NETNS_PORT}", "board_device_id": request["device_id"],
                     "netns": {"socket": relay.path, "port": NETNS_PORT, "adb": adb}}
            return run_json_worker([*UNSHARE, python, str(WORKER)], inner, timeout, child_env)
        finally:
            relay.close()


def preflight(session: BoardSession, model: RknnModel, toolkit_release, adb: AdbServer, *, force: bool) -> list[str]:
    """Why a connected-board run on this board would fail, before the toolkit is started (starts a
    stopped rknn_server the board's way, as that is what the user would do next)."""
    board = session.board
    facts = gather_facts(session)
    problems = []
    server, runtime = facts.server_version, facts.runtime_version
    if server is None or runtime is None:
        problems.append("rknn_server or librknnrt missing: inv provision --host " + board.name)
    elif not force:
        for label, v in (("rknn_server", server), ("librknnrt", runtime)):
            if toolkit_release and not same_release(v.release, toolkit_release):
                problems.append(f"{label} {v} on the board but rknn-toolkit2 {toolkit_release} on the PC: the run "
                                f"would fail with 'msg_ioctl_ack fail' (use the same release, or --force)")
    if facts.soc and not runs_on(model.target_platforms, facts.soc):
        problems.append(f"{model.path.rsplit('/', 1)[-1]} is built for {', '.join(socs_for(model.target_platforms))}, "
                        f"the board is {facts.soc}")
    if server is not None and not facts.server_running:
        try:
            started = session.run_as_root(server_script(manager_of(facts), server_dir_of(facts)))
            if started.return_code != 0:
                problems.append(f"rknn_server is stopped and did not start: {started.stderr.strip()}")
        except RootUnavailable as e:
            problems.append(f"rknn_server is stopped and starting it needs root: {e}")
    if not board.adb:
        problems.append("the inventory gives no adb device id for this board (adb: SERIAL, or IP:5555 for network adb)")
    else:
        refused = adb.connect(board.adb) if NETWORK_ID.match(board.adb) else ""
        if refused:
            problems.append(f"network adb {board.adb} unreachable: `adb connect {board.adb}` said: {refused} "
                            f"(is adbd running on the board and listening on that port?)")
        elif board.adb not in adb.devices():
            problems.append(f"the toolkit's adb does not list {board.adb} (USB cable and udev rules, or "
                            f"`adb connect {board.adb}` for network adb)")
    return problems


def perf_job(models: list[RknnModel], *, python: str, toolkit_release, adb: AdbServer, force: bool, fix_freq: bool,
             perf_debug: bool, timeout: float, raw_dir: Path):
    def job(session: BoardSession) -> BoardResult:
        board = session.board
        t0 = time.monotonic()
        problems = preflight(session, models[0], toolkit_release, adb, force=force)
        t_pre = time.monotonic() - t0
        if problems:
            return BoardResult(board.name, FAILED, error="preflight: " + "; ".join(problems),
                               data=[PerfRun(board.name, m.path.rsplit("/", 1)[-1], stage="preflight",
                                             error="; ".join(problems)) for m in models])
        saved = read_governors(session) if fix_freq else {}
        runs = []
        try:
            for model in models:
                t1 = time.monotonic()
                runs.append(_one(board, model, python, fix_freq, perf_debug, timeout, raw_dir, adb.env, adb.adb))
                runs[-1].seconds = {"preflight": round(t_pre, 2), "toolkit": round(time.monotonic() - t1, 2)}
        finally:
            t2 = time.monotonic()
            restored = restore_governors(session, saved)
        for r in runs:
            r.governors_restored = restored
            r.seconds["governors"] = round(time.monotonic() - t2, 2)
        ok = all(r.ok for r in runs)
        return BoardResult(board.name, OK if ok else FAILED, data=runs,
                           error="" if ok else "; ".join(f"{r.model}: {r.error}" for r in runs if not r.ok))
    return job


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one(board, model: RknnModel, python, fix_freq, perf_debug, timeout, raw_dir: Path, env=None, adb=None) -> PerfRun:
    name = model.path.rsplit("/", 1)[-1]
    target = board.soc or (model.target_platforms[0] if model.target_platforms else None)
    out = run_worker(python, {"model": model.path, "target": target, "device_id": board.adb,
                              "perf_debug": perf_debug, "fix_freq": fix_freq}, timeout, env, adb=adb)
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw = raw_dir / f"{board.name}-{name}.log"
    raw.write_text(out.get("log", "") + "\n---- eval_perf return value ----\n" + (out.get("perf_text") or "")
                   + "\n---- eval_memory return value ----\n" + json.dumps(out.get("memory")) + "\n")
    run = PerfRun(board.name, name, ok=bool(out.get("ok")), stage=out.get("stage", ""), error=out.get("error") or "",
                  raw_path=str(raw), toolkit_errors=toolkit_errors(out.get("log") or ""))
    if not run.ok:
        # what the toolkit itself said, not only the exception the worker caught (often a bare traceback)
        said = "; ".join(run.toolkit_errors[:3])
        last = run.error.strip().splitlines()[-1] if run.error.strip() else ""
        run.error = f"{run.stage}: {said or run.error}" + (f" ({last})" if said and last else "")
    run.perf = parse_perf(out.get("perf_text") or out.get("log", ""))
    memory = out.get("memory")
    run.memory = parse_memory(repr(memory)) if memory else parse_memory(out.get("log", ""))
    run.diagnoses = diagnose((out.get("log") or "") + "\n" + (out.get("error") or ""))
    if run.ok and run.perf is None:
        run.ok, run.error = False, "eval_perf returned nothing that could be read"
    return run
