"""Runs ON THE BOARD: `inv perf --on-board` sends this file over the SSH channel's stdin to the board's Python
(`python3 - PARAMS`), never imports it on the PC. Standard library + numpy + rknn-toolkit-lite2 only; Python 3.7+.

PARAMS (sys.argv[1], JSON, quoted by rkdeploy.remote.script): model (path on the board), core_masks (names:
"0", "0_1", "0_1_2", "auto"), threads (list of counts), warmup, runs, duration (seconds; 0: use runs),
inputs ([{shape, dtype, layout, layout_ori}], the model's input tensors as rkdeploy.rknn_model reads them; [] to
ask the runtime).

For each core mask and thread count: N threads, each with its own RKNNLite context (load_rknn, init_runtime
with that core mask), random inputs of the model's shapes and dtypes, `warmup` inferences each, then all start
together and run `runs` inferences each (or for `duration` s). Per inference: wall-clock latency around
RKNNLite.inference, and the runtime's own time for the run (rknn_query PERF_RUN, which lite2 2.x exposes as
RKNNLite().rknn_runtime.get_run_perf(), in µs) where it answers. Throughput = all inferences of all threads /
the time from the common start to the last thread's end.

Prints progress lines on stderr (keeps the SSH channel alive) and, last on stdout, one line
`RKDEPLOY-BENCH-RESULT {json}`.
"""
import json
import sys
import threading
import time
import traceback

MARKER = "RKDEPLOY-BENCH-RESULT "


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def stats(values, scale=1.0):
    if not values:
        return None
    return {"p50": round(percentile(values, 50) * scale, 3), "p90": round(percentile(values, 90) * scale, 3),
            "p99": round(percentile(values, 99) * scale, 3), "mean": round(sum(values) / len(values) * scale, 3),
            "min": round(min(values) * scale, 3), "max": round(max(values) * scale, 3)}


def make_inputs(np, specs):
    kinds = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
             "uint32": np.uint32, "int64": np.int64, "float16": np.float16, "float32": np.float32,
             "float": np.float32, "bool": np.bool_}
    arrays = []
    for spec in specs:
        shape = [int(d) for d in spec.get("shape") or []]
        dtype = kinds.get(str(spec.get("dtype") or "uint8").lower(), np.uint8)
        if len(shape) == 4 and (spec.get("layout_ori") or "NCHW").upper() == "NCHW":
            shape = [shape[0], shape[2], shape[3], shape[1]]      # lite2 takes 4-D inputs as NHWC
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            arrays.append(np.random.randint(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype))
        elif dtype is np.bool_:
            arrays.append(np.random.randint(0, 2, size=shape).astype(np.bool_))
        else:
            arrays.append(np.random.rand(*shape).astype(dtype))
    return arrays


def runtime_inputs(np, lite):
    """The model's inputs as the runtime describes them (for a model whose metadata the PC did not read)."""
    rt = lite.rknn_runtime
    n_in, _ = rt.get_in_out_num()
    specs = []
    for i in range(n_in):
        attr = rt.get_tensor_attr(i)
        dims = [int(d) for d in list(attr.dims)[:attr.n_dims]]
        specs.append({"shape": dims, "dtype": "uint8" if attr.type in (2, 3) else "float32", "layout_ori": "NHWC"})
    return specs


def one(params, mask_name, threads, RKNNLite, np, log):
    masks = {"0": RKNNLite.NPU_CORE_0, "1": RKNNLite.NPU_CORE_1, "2": RKNNLite.NPU_CORE_2,
             "0_1": RKNNLite.NPU_CORE_0_1, "0_1_2": RKNNLite.NPU_CORE_0_1_2, "auto": RKNNLite.NPU_CORE_AUTO,
             "all": RKNNLite.NPU_CORE_ALL}
    result = {"core_mask": mask_name, "threads": threads, "ok": False, "stage": "load_rknn", "error": None}
    lites = []
    try:
        for t in range(threads):
            lite = RKNNLite(verbose=False)
            lites.append(lite)
            result["stage"] = "load_rknn"
            if lite.load_rknn(params["model"]) != 0:
                result["error"] = "load_rknn failed"
                return result
            result["stage"] = "init_runtime"
            ret = lite.init_runtime(core_mask=masks[mask_name])
            if ret != 0:
                result["error"] = "init_runtime returned %s (core_mask %s)" % (ret, mask_name)
                return result
        result["stage"] = "inputs"
        specs = params.get("inputs") or runtime_inputs(np, lites[0])
        inputs = [make_inputs(np, specs) for _ in lites]
        result["stage"] = "warmup"
        for lite, data in zip(lites, inputs):
            for _ in range(int(params.get("warmup", 0))):
                if lite.inference(inputs=data) is None:
                    result["error"] = "inference returned nothing (see the runtime's messages)"
                    return result
        result["stage"] = "run"
        runs, duration = int(params.get("runs") or 0), float(params.get("duration") or 0)
        latencies = [[] for _ in lites]
        npu_us = [[] for _ in lites]
        failures = []
        start = threading.Barrier(threads + 1)
        ends = [0.0] * threads

        def worker(i):
            lite, data = lites[i], inputs[i]
            perf = getattr(lite.rknn_runtime, "get_run_perf", None)
            start.wait()
            t_end = time.perf_counter() + duration if duration else None
            n = 0
            try:
                while (n < runs) if not duration else (time.perf_counter() < t_end):
                    t0 = time.perf_counter()
                    out = lite.inference(inputs=data)
                    t1 = time.perf_counter()
                    if out is None:
                        failures.append("thread %d: inference %d returned nothing" % (i, n))
                        break
                    latencies[i].append(t1 - t0)
                    if perf is not None:
                        try:
                            us = float(perf())          # lite2 2.3.2 returns the µs as a str
                            if us > 0:
                                npu_us[i].append(us)
                        except Exception:
                            perf = None
                    n += 1
            except Exception:
                failures.append("thread %d: %s" % (i, traceback.format_exc().strip().splitlines()[-1]))
            ends[i] = time.perf_counter()

        pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
        for th in pool:
            th.start()
        start.wait()
        t0 = time.perf_counter()
        for th in pool:
            th.join()
        wall = max(ends) - t0
        flat = [x for per in latencies for x in per]
        flat_npu = [x for per in npu_us for x in per]
        result.update({"runs": len(flat), "per_thread_runs": [len(x) for x in latencies], "wall_s": round(wall, 4),
                       "latency_ms": stats(flat, 1000.0), "npu_time_ms": stats(flat_npu, 0.001),
                       "throughput": round(len(flat) / wall, 3) if wall > 0 and flat else None})
        if failures:
            result["error"] = "; ".join(failures[:3])
            return result
        result["ok"], result["stage"] = bool(flat), "done"
        if not flat:
            result["error"] = "no inference completed"
        return result
    except Exception:
        result["error"] = traceback.format_exc().strip().splitlines()[-1]
        log("%s" % traceback.format_exc())
        return result
    finally:
        for lite in lites:
            try:
                lite.release()
            except Exception:
                pass


def main():
    params = json.loads(sys.argv[1])
    doc = {"ok": False, "stage": "import", "error": None, "results": []}

    def log(text):
        sys.stderr.write("rkdeploy-bench: %s\n" % text)
        sys.stderr.flush()

    try:
        import numpy as np
        from rknnlite.api import RKNNLite
    except Exception:
        doc["error"] = traceback.format_exc().strip().splitlines()[-1]
        print(MARKER + json.dumps(doc))
        return 3
    try:
        import rknnlite
        doc["lite2"] = getattr(rknnlite, "__version__", None)
    except Exception:
        pass
    doc["stage"] = "bench"
    for mask in params["core_masks"]:
        for threads in params["threads"]:
            log("core mask %s, %d thread(s)" % (mask, threads))
            r = one(params, mask, int(threads), RKNNLite, np, log)
            log("core mask %s, %d thread(s): %s" % (mask, threads, "ok" if r["ok"] else r["error"]))
            doc["results"].append(r)
            sys.stdout.flush()
    doc["ok"] = bool(doc["results"]) and all(r["ok"] for r in doc["results"])
    doc["stage"] = "done"
    print(MARKER + json.dumps(doc))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
