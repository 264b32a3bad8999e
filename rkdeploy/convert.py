"""`inv convert`: ONNX → .rknn with the PC's rknn-toolkit2, one file per SoC family, with an accuracy report and
the recipe kept next to each model.

The toolkit is never imported here: each target runs `convert_worker.py` in the toolkit's own Python (a JSON
request on stdin, a JSON result on stdout, the toolkit's console output kept raw under the work directory), as
`inv perf` runs perf_worker.py. SoCs that share an NPU share a model (socs.py): `--target rk3566,rk3568` makes
one file. `--for-fleet` takes the SoCs and the runtime release from the selected boards' probes and refuses when
the toolkit's release is not the fleet's runtime release (a model built by a newer toolkit does not load on an
older runtime; docs/rknn-formats.md).

The recipe sidecar `<model>.rknn.recipe.json` records what made the file: the ONNX file's and the dataset's
sha256 (the dataset: its listing and every file it names), the options, the toolkit release, the target, the
model's own sha256 and the times. `inv models.inspect` shows it; `inv deploy` stores it with the model on the
board (versions/<sha12>.json, key `recipe`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .bundle import sha256_of
from .socs import KNOWN_SOCS, family_of
from .toolkit import run_json_worker, toolkit_errors
from .versions import release_of

WORKER = Path(__file__).with_name("convert_worker.py")
RECIPE_SUFFIX = ".recipe.json"
RECIPE_FORMAT = 1
# The newest ONNX opset each toolkit release's load_onnx takes (its words: "Unsupport onnx opset 21, need <= 19!",
# measured with 2.3.2). Unknown releases: the toolkit's own check, mapped to the same message.
MAX_OPSET = {"2.3.2": 19}
# What config(quantized_dtype=…) accepts per target in 2.3.2 (measured: every target × every dtype); fp16 is
# "no quantization" (build(do_quantization=False), the toolkit's float16).
DTYPES = ("w8a8", "w8a16", "w16a16i", "w16a16i_dfp", "w4a16", "fp16")
DTYPES_232 = {"rk3588": ("w8a8", "w16a16i", "w16a16i_dfp"), "rk3566": ("w8a8", "w16a16i", "w16a16i_dfp"),
              "rk3568": ("w8a8", "w16a16i", "w16a16i_dfp"), "rk3562": ("w8a8", "w8a16", "w16a16i", "w16a16i_dfp"),
              "rk3576": ("w8a8", "w16a16i", "w16a16i_dfp", "w4a16"), "rv1106": ("w8a8", "w16a16i", "w16a16i_dfp")}
LAYOUTS = ("nchw", "nhwc")


class ConvertError(RuntimeError):
    """Bad input, said before the toolkit runs (exit 1)."""


@dataclass
class ConvertOptions:
    onnx: str
    targets: list[str]
    out_dir: str
    name: str
    dataset: str | None = None
    dtype: str = "fp16"                       # fp16: no quantization; else a quantized_dtype
    mean: list[list[float]] | None = None
    std: list[list[float]] | None = None
    layout: str = "nchw"                      # of the dataset's .npy files
    optimization_level: int = 3
    input_size_list: list[list[int]] | None = None
    hybrid_step: int | None = None
    work_dir: str | None = None
    samples: int = 4
    analysis: bool = True
    quantized_algorithm: str | None = None

    @property
    def quantize(self) -> bool:
        return self.dtype != "fp16"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TargetResult:
    target: str
    socs: list[str]
    ok: bool = False
    stage: str = ""
    error: str = ""
    kind: str | None = None
    rknn: str | None = None
    recipe: str | None = None
    seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    accuracy: list[dict] = field(default_factory=list)
    analysis: dict | None = None
    log_path: str = ""
    work_files: list[str] = field(default_factory=list)
    toolkit_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# -- options ---------------------------------------------------------------------------------------------------

def parse_per_input(text: str | None, what: str, cast=float) -> list[list] | None:
    """`0,0,0` (one input) or `0,0,0:127.5` (one group per input, separated by ':')."""
    if text is None or str(text).strip() == "":
        return None
    try:
        return [[cast(v) for v in group.split(",") if v.strip()] for group in str(text).split(":")]
    except ValueError:
        raise ConvertError(f"{what} {text!r}: numbers separated by ',' (one group per input, groups separated by "
                           "':'), e.g. 0,0,0 or 0,0,0:127.5") from None


def families(targets: list[str]) -> list[tuple[str, list[str]]]:
    """One (target, SoCs sharing its model) per SoC family, in the order first named; the first named member
    of a family is the target the toolkit is given."""
    out: list[tuple[str, list[str]]] = []
    for t in targets:
        t = t.strip().lower()
        if not t:
            continue
        fam = family_of(t)
        if any(fam == family_of(seen) for seen, _ in out):
            for seen, socs in out:
                if family_of(seen) == fam and t not in socs:
                    socs.append(t)
            continue
        out.append((t, [t]))
    return out


def check_options(opts: ConvertOptions, toolkit_version: str) -> None:
    if not Path(opts.onnx).is_file():
        raise ConvertError(f"{opts.onnx}: no such file")
    if opts.dtype not in DTYPES:
        raise ConvertError(f"--dtype {opts.dtype}: one of {', '.join(DTYPES)} (fp16: no quantization)")
    if opts.quantize and not opts.dataset and opts.hybrid_step != 2:
        raise ConvertError(f"--dtype {opts.dtype} quantizes: give the calibration dataset with --quantize DATASET")
    if opts.dataset and not Path(opts.dataset).is_file():
        raise ConvertError(f"--quantize {opts.dataset}: no such file (a text file listing one image or .npy file per "
                           "input on each line)")
    if opts.layout not in LAYOUTS:
        raise ConvertError(f"--input-layout {opts.layout}: nchw (the ONNX model's own) or nhwc")
    if opts.hybrid_step not in (None, 1, 2):
        raise ConvertError("--hybrid-step is 1 or 2")
    if not opts.targets:
        raise ConvertError("which SoCs? --target rk3588,rk3566 or --for-fleet with --all/--group/--host")
    if release_of(toolkit_version) and str(release_of(toolkit_version)) == "2.3.2":
        for t, _ in families(opts.targets):
            allowed = DTYPES_232.get(t)
            if opts.quantize and allowed and opts.dtype not in allowed:
                raise ConvertError(f"--dtype {opts.dtype} is not built for {t} by rknn-toolkit2 2.3.2 (it takes "
                                   f"{', '.join(allowed)}, or fp16 without quantization)")


def out_path(opts: ConvertOptions, target: str) -> Path:
    return Path(opts.out_dir) / f"{opts.name}-{target}.rknn"


def work_dir(opts: ConvertOptions) -> Path:
    return Path(opts.work_dir) if opts.work_dir else Path(opts.out_dir) / f"{opts.name}.convert"


# -- the fleet --------------------------------------------------------------------------------------------------

@dataclass
class FleetTargets:
    socs: list[str]
    runtimes: dict[str, str]                 # board -> runtime version ('' when none)
    unknown: list[str]                       # boards whose SoC is unknown


def fleet_targets(facts_by_board: dict) -> FleetTargets:
    socs, runtimes, unknown = [], {}, []
    for board, facts in facts_by_board.items():
        if facts.soc and facts.soc in KNOWN_SOCS:
            if facts.soc not in socs:
                socs.append(facts.soc)
        else:
            unknown.append(board)
        rt = facts.runtime_version
        runtimes[board] = str(rt) if rt is not None else ""
    return FleetTargets(socs, runtimes, unknown)


def fleet_refusal(toolkit_version: str, fleet: FleetTargets) -> str | None:
    """Why models from this toolkit are not for this fleet, with the commands that would make them agree; None
    when every board's runtime is the toolkit's release."""
    tk = release_of(toolkit_version)
    wrong = {b: v for b, v in fleet.runtimes.items() if not v or release_of(v) is None
             or (tk is not None and release_of(v).release[:3] != tk.release[:3])}
    if not wrong:
        return None
    releases = sorted({str(release_of(v)) for v in fleet.runtimes.values() if v and release_of(v)})
    said = ", ".join(f"{b}: {v or 'no librknnrt'}" for b, v in sorted(wrong.items()))
    fixes = [f"`inv provision --bundle {tk}` (the boards to the toolkit's release)"]
    if len(releases) == 1 and not any(not v for v in fleet.runtimes.values()):
        fixes.append(f"`inv perf.setup --version {releases[0]}` (the toolkit to the fleet's release; then point "
                     f"perf.toolkit_python or RKDEPLOY_TOOLKIT_PYTHON at it)")
    return (f"the toolkit is rknn-toolkit2 {toolkit_version} but the fleet's runtime release is "
            f"{' / '.join(releases) or 'none'} ({said}): a model it builds "
            + ("would not load on an older runtime" if releases and tk and any(
                release_of(r) < tk for r in releases) else "would not be the fleet's release")
            + ". Make them agree with " + " or ".join(fixes))


# -- the worker ------------------------------------------------------------------------------------------------

def run_worker(python: str, request: dict, timeout: float) -> dict:
    return run_json_worker([python, str(WORKER)], request, timeout)


def dataset_digest(path: str) -> dict:
    """The dataset listing's sha256, and one sha256 over every file it names (path as listed + content), so a
    changed image changes the recipe even when the listing does not."""
    listing = Path(path)
    h = hashlib.sha256()
    files = 0
    for line in listing.read_text().splitlines():
        for part in line.split():
            if part.startswith("#"):
                break
            p = Path(part) if os.path.isabs(part) else listing.parent / part
            h.update(part.encode() + b"\0" + (sha256_of(p).encode() if p.is_file() else b"missing") + b"\n")
            files += 1
    return {"path": str(listing), "sha256": sha256_of(listing), "files": files, "files_sha256": h.hexdigest()}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def convert(opts: ConvertOptions, *, python: str, toolkit_version: str, timeout: float = 1800,
            progress=None) -> list[TargetResult]:
    """Every target family in turn (the toolkit uses both cores by itself). Each `.rknn` gets its recipe."""
    progress = progress or (lambda msg: None)
    work = work_dir(opts)
    work.mkdir(parents=True, exist_ok=True)
    Path(opts.out_dir).mkdir(parents=True, exist_ok=True)
    source_sha = sha256_of(opts.onnx)
    dataset = dataset_digest(opts.dataset) if opts.dataset else None
    top = MAX_OPSET.get(str(release_of(toolkit_version)) if release_of(toolkit_version) else "")
    results = []
    for target, socs in families(opts.targets):
        progress(f"convert: {Path(opts.onnx).name} for {'/'.join(socs)} ({opts.dtype}) ...")
        started, t0 = _now(), __import__("time").monotonic()
        out = out_path(opts, target)
        request = {"onnx": str(Path(opts.onnx).resolve()), "target": target, "out": str(out.resolve()),
                   "work_dir": str(work.resolve()), "quantize": opts.quantize,
                   "dataset": str(Path(opts.dataset).resolve()) if opts.dataset else None,
                   "quantized_dtype": opts.dtype if opts.quantize else None, "mean": opts.mean, "std": opts.std,
                   "layout": opts.layout, "optimization_level": opts.optimization_level,
                   "input_size_list": opts.input_size_list, "hybrid_step": opts.hybrid_step,
                   "samples": opts.samples, "analysis": opts.analysis, "toolkit": toolkit_version,
                   "max_opset": top, "quantized_algorithm": opts.quantized_algorithm}
        raw = run_worker(python, request, timeout)
        wall = __import__("time").monotonic() - t0
        log = work / f"toolkit-{target}.log"
        log.write_text(raw.get("log") or "")
        r = TargetResult(target, socs, ok=bool(raw.get("ok")), stage=raw.get("stage", ""),
                         error=raw.get("error") or "", kind=raw.get("kind"), seconds=raw.get("seconds") or {},
                         wall_seconds=round(wall, 2), accuracy=raw.get("accuracy") or [],
                         analysis=raw.get("analysis"), log_path=str(log), work_files=raw.get("work_files") or [],
                         toolkit_errors=toolkit_errors(raw.get("log") or ""))
        if not r.ok and not r.kind:
            said = "; ".join(r.toolkit_errors[:3])
            last = r.error.strip().splitlines()[-1] if r.error.strip() else ""
            r.error = f"{r.stage}: {said or r.error}" + (f" ({last})" if said and last and last not in said else "")
        if r.ok and raw.get("rknn") and out.exists():
            r.rknn = str(out)
            recipe = {"format": RECIPE_FORMAT, "made_by": "rkdeploy convert",
                      "source": {"path": str(Path(opts.onnx).resolve()), "sha256": source_sha,
                                 "opset": (raw.get("onnx") or {}).get("opset")},
                      "dataset": dataset, "target": target, "socs": socs,
                      "toolkit": toolkit_version,
                      "options": {k: v for k, v in opts.to_dict().items()
                                  if k not in ("onnx", "targets", "out_dir", "work_dir")},
                      "input_shapes": raw.get("input_shapes"), "model_sha256": sha256_of(out),
                      "started_at": started, "finished_at": _now(), "seconds": r.seconds,
                      "wall_seconds": r.wall_seconds,
                      "accuracy": [{k: a.get(k) for k in ("output", "samples", "cosine_min", "max_abs", "mean_abs")}
                                   for a in r.accuracy]}
            path = Path(str(out) + RECIPE_SUFFIX)
            path.write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
            r.recipe = str(path)
        results.append(r)
    return results


# -- the sidecar, for inspect and deploy -------------------------------------------------------------------------

def recipe_for_deploy(model_path: str | Path, sha256: str) -> dict | None:
    """The recipe `inv deploy` stores with a model on the board (key `recipe` of versions/<sha12>.json): only one
    that made this very file (its model_sha256), never a stale or unreadable one."""
    path = Path(str(model_path) + RECIPE_SUFFIX)
    try:
        recipe = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return recipe if isinstance(recipe, dict) and recipe.get("model_sha256") == sha256 else None


def read_recipe(model_path: str | Path) -> dict | None:
    """The recipe next to a model, or None. A recipe whose model_sha256 is not this file's gets `"stale": true`
    (the model was rebuilt or replaced since); an unreadable one `{"error": …}`."""
    path = Path(str(model_path) + RECIPE_SUFFIX)
    if not path.is_file():
        return None
    try:
        recipe = json.loads(path.read_text())
        if not isinstance(recipe, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        return {"error": f"{path.name}: {e}"}
    try:
        recipe["stale"] = recipe.get("model_sha256") != sha256_of(model_path)
    except OSError:
        pass
    return recipe
