"""Runs inside the toolkit's own Python (never imported by rkdeploy): one board, one model.

Reads a JSON request on stdin, drives rknn.api.RKNN (load_rknn → init_runtime → eval_perf →
eval_memory), and writes one JSON line on the original stdout. Everything the toolkit prints, from
Python or from its C libraries, goes to a file that is returned as `log`. An exception (2.x raises
ValueError when no device answers) is reported with the stage it happened in, not as a crash.

With `netns` in the request, this process is PID 1 of its own user, network and PID namespaces (rkdeploy.perf
started it under `unshare`): it brings its loopback up, relays TCP 127.0.0.1:PORT to the unix socket that
rkdeploy's BoardRelay joins to the board's adbd, starts its own adb server and `adb connect`s the relay, so
the toolkit's @transfer_proxy is this namespace's alone. When it exits, the kernel ends every process left in
its PID namespace (the adb server included).
"""
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def _pump(src, dst) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _join(inner, path) -> None:
    outer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        outer.connect(path)
    except OSError:
        inner.close()
        outer.close()
        return
    threading.Thread(target=_pump, args=(outer, inner), daemon=True).start()
    _pump(inner, outer)


def start_relay(port: int, path: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)

    def accept():
        while True:
            inner, _ = listener.accept()
            threading.Thread(target=_join, args=(inner, path), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def netns_setup(netns: dict, device_id: str) -> None:
    """Loopback, relay, this namespace's adb server, `adb connect` (the toolkit does not connect IP:PORT ids)."""
    loopback_up()
    start_relay(int(netns["port"]), netns["socket"])
    adb = netns["adb"]
    for args in (["start-server"], ["connect", device_id]):
        proc = subprocess.run([adb, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        said = (proc.stdout + proc.stderr).strip()
        print(f"rkdeploy: adb {' '.join(args)}: {said}", flush=True)
        if proc.returncode != 0 or (args[0] == "connect" and "connected to" not in said):
            raise RuntimeError(f"adb {' '.join(args)} in the worker's namespace: {said}")


def main() -> int:
    request = json.loads(sys.stdin.read())
    real_stdout = os.dup(1)
    log = tempfile.TemporaryFile(mode="w+b")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = sys.stdout
    result = {"ok": False, "stage": "import", "perf_text": None, "memory": None, "error": None}
    rknn = None
    try:
        if request.get("netns"):
            result["stage"] = "adb"
            netns_setup(request["netns"], request["device_id"])
            result["stage"] = "import"
        from rknn.api import RKNN

        rknn = RKNN(verbose=bool(request.get("verbose")))
        result["stage"] = "load_rknn"
        if rknn.load_rknn(request["model"]) != 0:
            raise RuntimeError("load_rknn failed")
        result["stage"] = "init_runtime"
        ret = rknn.init_runtime(target=request["target"], device_id=request.get("device_id"),
                                perf_debug=bool(request.get("perf_debug")), eval_mem=True)
        if ret != 0:
            raise RuntimeError(f"init_runtime returned {ret}")
        result["stage"] = "eval_perf"
        perf = rknn.eval_perf(fix_freq=bool(request.get("fix_freq", True)))
        result["perf_text"] = perf if isinstance(perf, str) else None
        result["stage"] = "eval_memory"
        memory = rknn.eval_memory()
        result["memory"] = memory if isinstance(memory, dict) else None
        result["ok"] = True
        result["stage"] = "done"
    except BaseException as e:  # noqa: BLE001 - the toolkit raises instead of returning codes
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc(limit=4)
    finally:
        try:
            if rknn is not None:
                rknn.release()
        except Exception:  # noqa: BLE001
            pass
        sys.stdout.flush()
        log.seek(0)
        result["log"] = log.read().decode("utf-8", "replace")
        os.write(real_stdout, (json.dumps(result) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
