"""Runs inside the toolkit's own Python (never imported by rkdeploy): one ONNX model, one target SoC.

Reads a JSON request on stdin (see rkdeploy.convert.ConvertRequest), and writes one JSON line on the original
stdout. Everything the toolkit prints, from Python or from its C libraries, goes to a file that is returned as
`log` (kept raw by rkdeploy). Stages: check (the ONNX file and the dataset, with onnx/numpy/cv2, before the
toolkit sees them), config, load_onnx, build (or hybrid_quantization_step1/step2), export_rknn,
accuracy_analysis (the toolkit's per-layer comparison, in the work directory), simulator (init_runtime() without
a target) against onnxruntime in float on the same inputs.
"""
import json
import os
import re
import sys
import tempfile
import time
import traceback

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


class Refused(Exception):
    """A problem rkdeploy explains itself (kind, message), before or instead of the toolkit's own words."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


# -- the ONNX file ---------------------------------------------------------------------------------------------

def onnx_facts(path):
    import onnx

    model = onnx.load(path, load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    weights = {i.name for i in model.graph.initializer}
    inputs = []
    for vi in model.graph.input:
        if vi.name in weights:
            continue
        t = vi.type.tensor_type
        dims = []
        for d in t.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or "?")
        inputs.append({"name": vi.name, "shape": dims,
                       "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?"})
    outputs = [o.name for o in model.graph.output]
    return {"opset": opset, "inputs": inputs, "outputs": outputs, "ir_version": model.ir_version}


def input_shapes(facts, sizes):
    """Each input's full static shape: the model's own, or --input-size-list (with or without the batch)."""
    shapes = []
    dynamic = [i for i in facts["inputs"] if any(not isinstance(d, int) for d in i["shape"])]
    if sizes:
        if len(sizes) != len(facts["inputs"]):
            raise Refused("input_size_list", f"--input-size-list gives {len(sizes)} shape(s) but the model has "
                          f"{len(facts['inputs'])} input(s): " + ", ".join(i["name"] for i in facts["inputs"]))
        for i, size in zip(facts["inputs"], sizes):
            size = [int(v) for v in size]
            if len(size) == len(i["shape"]) - 1:
                size = [1] + size
            if len(size) != len(i["shape"]):
                raise Refused("input_size_list", f"--input-size-list shape {size} for input {i['name']} has "
                              f"{len(size)} dimensions, the model's input {i['shape']} has {len(i['shape'])}")
            for want, got in zip(i["shape"], size):
                if isinstance(want, int) and want != got:
                    raise Refused("input_size_list", f"--input-size-list shape {size} for input {i['name']} "
                                  f"contradicts the model's fixed shape {i['shape']}")
            shapes.append(size)
        return shapes
    if dynamic:
        raise Refused("dynamic_shape", "the model's input shapes are not fixed: " + "; ".join(
            f"{i['name']} {i['shape']}" for i in dynamic) + ". Give every input's shape with --input-size-list, "
            "e.g. --input-size-list " + ":".join(
                ",".join(str(d) if isinstance(d, int) else ("1" if n == 0 else "224") for n, d in enumerate(i["shape"]))
                for i in facts["inputs"]))
    return [list(i["shape"]) for i in facts["inputs"]]


# -- the dataset -----------------------------------------------------------------------------------------------

def dataset_lines(path):
    base = os.path.dirname(os.path.abspath(path))
    lines = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            lines.append((n, [p if os.path.isabs(p) else os.path.join(base, p) for p in parts]))
    return lines


def _sample_shape(shape, layout):
    """What one .npy sample of an input looks like: 4-D inputs in `layout` (nchw: the ONNX model's own, which is
    what the toolkit reads; nhwc: rkdeploy transposes them for the toolkit), other ranks as they are."""
    if len(shape) == 4 and layout == "nhwc":
        return [shape[0], shape[2], shape[3], shape[1]]
    return list(shape)


def load_sample(path, shape, layout, where):
    """One input's sample as the model takes it (NCHW for 4-D inputs, with the batch dimension), refused if its
    size is not the input's. Images are read as RGB, height x width x channels."""
    import numpy as np

    want = _sample_shape(shape, layout)
    if not os.path.isfile(path):
        raise Refused("dataset", f"{where}: {path} does not exist")
    if path.lower().endswith(".npy"):
        arr = np.load(path)
        got = list(arr.shape)
        if got == want[1:]:
            arr = arr[None]
        elif got != want:
            raise Refused("dataset_shape", f"{where}: {os.path.basename(path)} has shape {got}, the model's input "
                          f"needs {want} ({layout.upper() if len(want) == 4 else 'as the model'}, batch optional)")
        return arr.transpose(0, 3, 1, 2) if len(want) == 4 and layout == "nhwc" else arr
    if path.lower().endswith(IMAGE_EXT):
        import cv2

        img = cv2.imread(path)
        if img is None:
            raise Refused("dataset", f"{where}: {path} is not an image OpenCV can read")
        if len(want) != 4:
            raise Refused("dataset_shape", f"{where}: {os.path.basename(path)} is an image but the input is "
                          f"{len(want)}-D {shape}")
        c, h, w = shape[1], shape[2], shape[3]
        if c == 1:
            img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)[..., None]
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)          # the toolkit feeds images as RGB
        if list(img.shape) != [h, w, c]:
            raise Refused("dataset_shape", f"{where}: {os.path.basename(path)} is {img.shape[1]}x{img.shape[0]} "
                          f"with {img.shape[2]} channel(s); the model's input is {w}x{h} with {c}: resize the "
                          "images (the toolkit would not do it for you) or give --input-size-list")
        return img[None].astype(np.float32).transpose(0, 3, 1, 2)
    raise Refused("dataset", f"{where}: {os.path.basename(path)}: only images ({', '.join(IMAGE_EXT)}) and .npy "
                  "files can be listed")


def check_dataset(path, shapes, layout, work):
    """Every line checked (one file per input, each of the input's size). With NHWC .npy files, a copy of the
    dataset in NCHW (the toolkit reads .npy as the model's layout) is written into `work`; returns the lines
    and the dataset file to give the toolkit."""
    import numpy as np

    lines = dataset_lines(path)
    if not lines:
        raise Refused("dataset", f"the dataset {path} lists no files")
    for n, files in lines:
        if len(files) != len(shapes):
            raise Refused("dataset", f"{path} line {n}: {len(files)} file(s), the model has {len(shapes)} input(s) "
                          "(one file per input, separated by spaces)")
        for shape, f in zip(shapes, files):
            load_sample(f, shape, layout, f"{path} line {n}")
    if layout != "nhwc" or not any(len(s) == 4 for s in shapes):
        return lines, path
    out_dir = os.path.join(work, "dataset-nchw")
    os.makedirs(out_dir, exist_ok=True)
    converted = []
    for n, files in lines:
        row = []
        for i, (shape, f) in enumerate(zip(shapes, files)):
            if f.lower().endswith(".npy") and len(shape) == 4:
                target = os.path.join(out_dir, f"line{n}-input{i}.npy")
                np.save(target, load_sample(f, shape, layout, f"{path} line {n}"))
                f = target
            row.append(f)
        converted.append((n, row))
    listing = os.path.join(work, "dataset-nchw.txt")
    with open(listing, "w") as out:
        out.writelines(" ".join(row) + "\n" for _, row in converted)
    return converted, listing


# -- accuracy --------------------------------------------------------------------------------------------------

def compare(ref, got):
    import numpy as np

    integer = np.issubdtype(np.asarray(ref).dtype, np.integer)
    a = np.asarray(ref, dtype=np.float64).ravel()
    b = np.asarray(got, dtype=np.float64).ravel()
    if a.size != b.size:
        return {"error": f"{a.size} values from onnxruntime, {b.size} from the simulator"}
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cos = float(a @ b / (na * nb)) if na and nb else (1.0 if na == nb else 0.0)
    diff = np.abs(a - b)
    return {"cosine": cos, "max_abs": float(diff.max()) if diff.size else 0.0,
            "mean_abs": float(diff.mean()) if diff.size else 0.0, "equal": (float((a == b).mean()) if a.size else 1.0) if integer else None}


def preprocess(arr, mean, std):
    """What the ONNX model itself sees: (x - mean) / std per channel (the toolkit folds them into the model)."""
    import numpy as np

    x = np.asarray(arr, dtype=np.float32)
    if mean is not None or std is not None:
        c = x.shape[1] if x.ndim >= 2 else 1
        m = np.asarray(mean if mean is not None else [0.0] * c, dtype=np.float32)
        s = np.asarray(std if std is not None else [1.0] * c, dtype=np.float32)
        bshape = [1, -1] + [1] * (x.ndim - 2) if x.ndim >= 2 else [-1]
        x = (x - m.reshape(bshape)) / s.reshape(bshape)
    return x


def samples_for(request, shapes, lines, work):
    """N samples: the dataset's first lines, else random inputs in [0, 255) written as .npy files into `work`."""
    import numpy as np

    n = max(1, int(request.get("samples") or 1))
    out = []
    if lines:
        for _, files in lines[:n]:
            out.append((files, [load_sample(f, s, "nchw", "dataset") for f, s in zip(files, shapes)]))
        return out
    rng = np.random.default_rng(int(request.get("seed", 0)))
    os.makedirs(work, exist_ok=True)
    for k in range(n):
        files, arrays = [], []
        for i, s in enumerate(shapes):
            arr = (rng.random(s) * 255).astype(np.float32)
            f = os.path.join(work, f"random-{k}-input{i}.npy")
            np.save(f, arr)
            files.append(f)
            arrays.append(arr)
        out.append((files, arrays))
    return out


def parse_error_analysis(text):
    """The toolkit's accuracy_analysis table (error_analysis.txt): per layer, the op type, and per pair of
    columns the entire / single cosine and euclidean distance. Lines that are not table rows are skipped."""
    import re

    rows = []
    header = None
    for line in text.splitlines():
        s = line.strip()
        if not s or set(s) <= set("-=#+ "):
            continue
        if header is None and "cos" in s.lower() and ("layer" in s.lower() or "name" in s.lower()):
            header = s
            continue
        if s.startswith("["):
            m = re.match(r"\[(?P<op>[^\]]+)\]\s+(?P<name>\S+)\s+(?P<rest>.*)$", s)
            if m:
                nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", m.group("rest"))]
                rows.append({"op": m.group("op"), "name": m.group("name"), "values": nums})
    low = text.lower()
    columns = []
    if "entire" in low and "single" in low:
        columns = [f"{g} {m}" for g in ("entire", "single") for m in ("cos", "euc")]
    return {"header": header, "columns": columns, "rows": rows}


def accuracy(rknn, request, facts, shapes, samples, result):
    import numpy as np
    import onnxruntime as ort

    means = request.get("mean") or [None] * len(shapes)
    stds = request.get("std") or [None] * len(shapes)
    sess = ort.InferenceSession(request["onnx"], providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    result["stage"] = "simulator"
    if rknn.init_runtime() != 0:
        raise RuntimeError("init_runtime() (the simulator) failed")
    per_output = {name: [] for name in out_names}
    for files, arrays in samples:
        feed = {name: preprocess(a, m, s).astype(np.float32)
                for name, a, m, s in zip(names, arrays, means, stds)}
        ref = sess.run(out_names, feed)
        got = rknn.inference(inputs=[np.ascontiguousarray(a) for a in arrays], data_format=["nchw"] * len(arrays))
        if got is None:
            raise RuntimeError("the simulator's inference returned nothing")
        for name, r, g in zip(out_names, ref, got):
            g = np.asarray(g)
            if g.size == np.asarray(r).size:
                g = g.reshape(np.asarray(r).shape)
            per_output[name].append(compare(r, g))
    summary = []
    for name, cmp in per_output.items():
        ok = [c for c in cmp if "error" not in c]
        summary.append({"output": name, "samples": len(cmp),
                        "cosine_min": min(c["cosine"] for c in ok) if ok else None,
                        "cosine_mean": sum(c["cosine"] for c in ok) / len(ok) if ok else None,
                        "max_abs": max(c["max_abs"] for c in ok) if ok else None,
                        "mean_abs": sum(c["mean_abs"] for c in ok) / len(ok) if ok else None,
                        "equal": (sum(c["equal"] for c in ok) / len(ok)) if ok and ok[0]["equal"] is not None else None,
                        "errors": [c["error"] for c in cmp if "error" in c]})
    return summary


def opset_message(opset, top, toolkit):
    return (f"the model's ONNX opset is {opset}; rknn-toolkit2 {toolkit or ''} takes opsets up to {top} (its words: "
            f"'Unsupport onnx opset {opset}, need <= {top}'): re-export the model with opset_version={top} "
            f"(torch.onnx.export(..., opset_version={top})) or convert it with "
            f"onnx.version_converter.convert_version(model, {top})")


def known_targets(RKNN):
    """The targets this toolkit's config() documents (its docstring: `target_platform: …, currently support a /
    b / c. default …`)."""
    doc = RKNN.config.__doc__ or ""
    m = re.search(r"target_platform:.*?currently support (.*?)\.\s*default", doc, re.S)
    return [s.strip() for s in re.split(r"[/,]", m.group(1)) if s.strip()] if m else []


def config_refusal(request, RKNN):
    """config()'s refusal named: an unknown target, or a dtype the target does not take."""
    target, dtype = request["target"], request.get("quantized_dtype")
    known = known_targets(RKNN)
    if known and target not in known:
        return Refused("target", f"rknn-toolkit2 {request.get('toolkit') or ''} does not know the target {target!r} "
                       f"(its words: \"Invalid target_platform '{target}'\"); it builds for: {', '.join(known)}")
    if dtype:
        return Refused("dtype", f"rknn-toolkit2 {request.get('toolkit') or ''} refuses --dtype {dtype} for {target} "
                       f"(its words: \"The quantized_dtype = '{dtype}' not support in '{target}'\" or \"Invalid "
                       f"quantized_dtype\"); see the table in README 'inv convert'")
    return RuntimeError("config() refused the options")


# -- main ------------------------------------------------------------------------------------------------------

def _times(result, stage, t0):
    result["seconds"][stage] = round(time.monotonic() - t0, 3)
    return time.monotonic()


def convert(request, result):
    t = time.monotonic()
    work = request["work_dir"]
    os.makedirs(work, exist_ok=True)
    layout = request.get("layout") or "nchw"
    result["stage"] = "check"
    facts = onnx_facts(request["onnx"])
    result["onnx"] = facts
    top = request.get("max_opset")
    if top and facts["opset"] and facts["opset"] > top:
        raise Refused("opset", opset_message(facts["opset"], top, request.get("toolkit")))
    shapes = input_shapes(facts, request.get("input_size_list"))
    result["input_shapes"] = shapes
    lines, dataset = [], None
    if request.get("dataset"):
        lines, dataset = check_dataset(request["dataset"], shapes, layout, work)
    result["dataset_used"] = dataset
    t = _times(result, "check", t)

    result["stage"] = "import"
    from rknn.api import RKNN

    rknn = RKNN(verbose=bool(request.get("verbose")))
    result["_rknn"] = rknn
    t = _times(result, "import", t)
    result["stage"] = "config"
    cfg = {"target_platform": request["target"], "optimization_level": int(request.get("optimization_level", 3))}
    if request.get("mean"):
        cfg["mean_values"] = request["mean"]
    if request.get("std"):
        cfg["std_values"] = request["std"]
    if request.get("quantized_dtype"):
        cfg["quantized_dtype"] = request["quantized_dtype"]
    if request.get("quantized_algorithm"):
        cfg["quantized_algorithm"] = request["quantized_algorithm"]
    try:
        ret = rknn.config(**cfg)
    except Exception:  # noqa: BLE001 - 2.x raises ValueError after logging `E config: …`
        ret = -1
    if ret != 0:
        raise config_refusal(request, RKNN)
    t = _times(result, "config", t)

    cwd = os.getcwd()
    os.chdir(work)                                   # hybrid quantization writes its files into the cwd
    try:
        step = request.get("hybrid_step")
        if step == 2:
            result["stage"] = "hybrid_quantization_step2"
            stem = os.path.splitext(os.path.basename(request["onnx"]))[0]
            files = [os.path.join(work, f"{stem}.{ext}") for ext in ("model", "data", "quantization.cfg")]
            missing = [f for f in files if not os.path.exists(f)]
            if missing:
                raise Refused("hybrid", "hybrid step 2 needs step 1's files in the work directory "
                              f"{work}: missing " + ", ".join(os.path.basename(f) for f in missing)
                              + " (run --hybrid-step 1 first)")
            if rknn.hybrid_quantization_step2(*files) != 0:
                raise RuntimeError("hybrid_quantization_step2 failed")
            t = _times(result, "build", t)
        else:
            result["stage"] = "load_onnx"
            kw = {}
            if request.get("input_size_list"):
                kw = {"inputs": [i["name"] for i in facts["inputs"]], "input_size_list": shapes}
            try:
                ret = rknn.load_onnx(model=request["onnx"], **kw)
            except Exception as e:  # noqa: BLE001
                m = re.search(r"Unsupport onnx opset (\d+), need <= (\d+)", str(e))
                if m:
                    raise Refused("opset", opset_message(int(m.group(1)), int(m.group(2)), request.get("toolkit"))) from None
                raise
            if ret != 0:
                raise RuntimeError("load_onnx failed")
            t = _times(result, "load_onnx", t)
            if step == 1:
                result["stage"] = "hybrid_quantization_step1"
                if not dataset:
                    raise Refused("hybrid", "hybrid quantization step 1 needs --quantize DATASET")
                if rknn.hybrid_quantization_step1(dataset=dataset, proposal=False) != 0:
                    raise RuntimeError("hybrid_quantization_step1 failed")
                result["work_files"] = sorted(os.listdir(work))
                _times(result, "build", t)
                result["ok"], result["stage"] = True, "done"
                return
            result["stage"] = "build"
            quantize = bool(request.get("quantize"))
            if quantize and not dataset:
                raise Refused("dataset", "quantization needs a dataset: --quantize DATASET (a text file listing one "
                              "image or .npy file per input on each line)")
            if rknn.build(do_quantization=quantize, dataset=dataset if quantize else None) != 0:
                raise RuntimeError("build failed")
            t = _times(result, "build", t)
    finally:
        os.chdir(cwd)
    result["stage"] = "export_rknn"
    if rknn.export_rknn(request["out"]) != 0:
        raise RuntimeError("export_rknn failed")
    t = _times(result, "export_rknn", t)
    result["rknn"] = request["out"]

    samples = samples_for(request, shapes, lines, os.path.join(work, "random-inputs"))
    result["samples"] = [files for files, _ in samples]
    if request.get("analysis", True):
        result["stage"] = "accuracy_analysis"
        out_dir = os.path.join(work, f"accuracy-analysis-{request['target']}")
        try:
            ret = rknn.accuracy_analysis(inputs=samples[0][0], output_dir=out_dir)
            text = ""
            path = os.path.join(out_dir, "error_analysis.txt")
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text = f.read()
            result["analysis"] = {"ret": ret, "dir": out_dir, "file": path if text else None,
                                  **parse_error_analysis(text)}
        except Exception as e:  # noqa: BLE001 - the file is still made; the comparison below still runs
            result["analysis"] = {"ret": None, "error": f"{type(e).__name__}: {e}", "rows": []}
        t = _times(result, "accuracy_analysis", t)
    result["accuracy"] = accuracy(rknn, request, facts, shapes, samples, result)
    _times(result, "simulator", t)
    result["ok"], result["stage"] = True, "done"


def main() -> int:
    request = json.loads(sys.stdin.read())
    real_stdout = os.dup(1)
    log = tempfile.TemporaryFile(mode="w+b")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = sys.stdout
    result = {"ok": False, "stage": "start", "target": request.get("target"), "error": None, "kind": None,
              "seconds": {}}
    try:
        convert(request, result)
    except Refused as e:
        result["kind"], result["error"] = e.kind, str(e)
    except BaseException as e:  # noqa: BLE001 - the toolkit raises as well as returning codes
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc(limit=6)
    finally:
        rknn = result.pop("_rknn", None)
        try:
            if rknn is not None:
                rknn.release()
        except Exception:  # noqa: BLE001
            pass
        sys.stdout.flush()
        log.seek(0)
        result["log"] = log.read().decode("utf-8", "replace")
        os.write(real_stdout, (json.dumps(result, default=str) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
