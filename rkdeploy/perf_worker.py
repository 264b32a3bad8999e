"""Runs inside the toolkit's own Python (never imported by rkdeploy): one board, one model.

Reads a JSON request on stdin, drives rknn.api.RKNN (load_rknn → init_runtime → eval_perf →
eval_memory), and writes one JSON line on the original stdout. Everything the toolkit prints, from
Python or from its C libraries, goes to a file that is returned as `log`. An exception (2.x raises
ValueError when no device answers) is reported with the stage it happened in, not as a crash.
"""
import json
import os
import sys
import tempfile
import traceback


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
