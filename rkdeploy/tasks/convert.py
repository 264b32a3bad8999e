"""`inv convert`."""
from __future__ import annotations

import builtins
from pathlib import Path

from .. import report
from ..convert import (ConvertError, ConvertOptions, convert, fleet_refusal, fleet_targets, parse_per_input)
from ..fleet import OK, BoardResult
from ..gather import gather_facts
from ..toolkit import ToolkitError, read_toolkit
from . import common
from .common import task

CONVERT_HELP = {**common.help_for("host", "group", "all", "inventory", "json", "parallel", "fail-percent",
                                   "accept-new-host-keys"),
                "model": "the .onnx file",
                "target": "target SoCs, comma-separated (one .rknn per SoC family: rk3566,rk3568 make one)",
                "for-fleet": "the SoCs (and the runtime release, which must be the toolkit's) of the selected boards",
                "quantize": "quantize with this calibration dataset: a text file listing one image or .npy file per "
                            "input on each line (the toolkit's build(dataset=…))",
                "dtype": "w8a8 (default with --quantize), w8a16, w16a16i, w16a16i_dfp, w4a16 — what the target takes "
                         "— or fp16 (no quantization, default without --quantize)",
                "name": "output name (default: the ONNX file's name); files are NAME-TARGET.rknn",
                "out": "output directory (default: the ONNX file's directory)",
                "work-dir": "where intermediate files go (hybrid quantization, accuracy_analysis, toolkit logs; "
                            "default OUT/NAME.convert)",
                "mean": "mean values per input channel, e.g. 0,0,0 (several inputs: 0,0,0:127.5)",
                "std": "std values per input channel, e.g. 255,255,255 (several inputs separated by ':')",
                "input-layout": "layout of the dataset's 4-D .npy files: nchw (the ONNX model's own, default) or nhwc",
                "input-size-list": "each input's shape, for dynamic inputs: 1,3,224,224 (several: 1,3,224,224:1,10)",
                "optimization-level": "the toolkit's optimization_level (0-3, default 3)",
                "hybrid-step": "hybrid quantization: 1 writes NAME.model/.data/.quantization.cfg into the work "
                               "directory (edit the .cfg), 2 builds from them",
                "samples": "inputs compared simulator vs onnxruntime (default 4; dataset lines, else random)",
                "no-analysis": "skip the toolkit's per-layer accuracy_analysis",
                "algorithm": "quantized_algorithm: normal (default), mmse, kl_divergence",
                "timeout": "seconds one conversion may take (default 1800)"}


@task(positional=["model"], help=CONVERT_HELP)
def convert_task(c, model, target=None, for_fleet=False, host=None, group=None, all=False, inventory=None,
                 quantize=None, dtype=None, name=None, out=None, work_dir=None, mean=None, std=None,
                 input_layout="nchw", input_size_list=None, optimization_level=3, hybrid_step=None, samples=4,
                 no_analysis=False, algorithm=None, timeout=1800, json=False, parallel=None, fail_percent=None,
                 accept_new_host_keys=False):
    """Convert an ONNX model to .rknn for each target SoC family with the PC's rknn-toolkit2 (its own
    virtualenv, run as a subprocess), with an accuracy report (the toolkit's simulator against onnxruntime in
    float, and the toolkit's per-layer accuracy_analysis) and the recipe kept next to each file
    (NAME-TARGET.rknn.recipe.json).

    Exit code: 0 every target converted; 8 a target failed; 1 bad input or a fleet whose runtime release is not
    the toolkit's (--for-fleet).
    """
    python = common.toolkit_python_or_fail(c)
    try:
        tk = read_toolkit(python)
    except ToolkitError as e:
        raise common.fail(str(e)) from None
    src = Path(model)
    try:
        opts = ConvertOptions(
            onnx=str(src), targets=[t for t in (target or "").split(",") if t.strip()],
            out_dir=str(Path(out) if out else src.parent), name=name or src.stem, dataset=quantize,
            dtype=dtype or ("w8a8" if quantize else "fp16"), mean=parse_per_input(mean, "--mean"),
            std=parse_per_input(std, "--std"), layout=str(input_layout).lower(),
            optimization_level=int(optimization_level),
            input_size_list=parse_per_input(input_size_list, "--input-size-list", int),
            hybrid_step=int(hybrid_step) if hybrid_step else None, work_dir=work_dir, samples=int(samples),
            analysis=not no_analysis, quantized_algorithm=algorithm)
    except ValueError as e:
        raise common.fail(str(e)) from None
    except ConvertError as e:
        raise common.fail(str(e)) from None
    fleet = None
    if for_fleet:
        if target:
            raise common.fail("--target or --for-fleet, not both")
        fleet = _fleet(c, inventory, host, group, all, parallel, accept_new_host_keys, fail_percent)
        refusal = fleet_refusal(tk.version, fleet)
        if refusal:
            raise common.fail(refusal)
        if not fleet.socs:
            raise common.fail("no board of the selection has a known SoC: " + ", ".join(fleet.unknown))
        opts.targets = list(fleet.socs)
    try:
        from ..convert import check_options
        check_options(opts, tk.version)
    except ConvertError as e:
        raise common.fail(str(e)) from None
    results = convert(opts, python=python, toolkit_version=tk.version, timeout=float(timeout),
                      progress=lambda m: common.say(m))
    failed = [r for r in results if not r.ok]
    # input refusals (opset, dynamic shapes, dataset, unknown target): bad input, exit 1; anything else: 8
    code = 0 if not failed else (report.EXIT_USAGE if builtins.all(r.kind for r in failed) else report.EXIT_FAILED)
    if json:
        report.print_json(report.envelope("convert", {
            "model": str(src), "toolkit": tk.version, "options": opts.to_dict(),
            "fleet": fleet.__dict__ if fleet else None, "results": [r.to_dict() for r in results]}, code=code))
    elif failed and len(failed) == len(results) and code == report.EXIT_USAGE and len({r.error for r in failed}) == 1:
        raise common.fail(failed[0].error)           # the same input problem for every target: one clear line
    else:
        from ..convert_report import render_convert
        render_convert(common.out(False), results, str(src))
    report.finish(code)


def all_ok(results) -> bool:
    return bool(results) and all(r.ok for r in results)


def _fleet(c, inventory, host, group, all, parallel, accept_new_host_keys, fail_percent=None):
    inv, boards = common.selection(c, inventory, host, group, all)

    def job(session) -> BoardResult:
        return BoardResult(session.board.name, OK, data=gather_facts(session))

    run = common.run(c, inv, boards, job, common.settings(c, inv, accept_new_host_keys, False), "convert", parallel,
                     fail_percent)
    lost = [r for r in run.results if r.status != OK or r.data is None]
    if lost:
        raise common.fail("--for-fleet needs every selected board's probe; not reached: "
                          + "; ".join(f"{r.board}: {r.error or r.status}" for r in lost))
    return fleet_targets({r.board: r.data for r in run.results})
