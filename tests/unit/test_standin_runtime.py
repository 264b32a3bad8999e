"""The lab's stand-in librknnrt (tests/lab/standins/librknnrt.c): the public rknn_api.h calls with an emulated
NPU, driven by rknn_api_probe.c under qemu-user in the lab's Debian arm64 root, on generated and on Rockchip's
own models."""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from rkdeploy.perf_parse import parse_perf
from rkdeploy.rknn_model import read_model
from tests import rockchip_files
from tests.lab import modelgen, sdk

STANDINS = Path(__file__).resolve().parents[1] / "lab" / "standins"
RT = sdk.release("2.3.2").runtime_string            # "2.3.2 (429f97ae6b@2025-04-09T09:09:27)"
TYPES = {"float32": 0, "float16": 1, "int8": 2, "uint8": 3, "int16": 4, "int32": 6, "int64": 8, "bool": 9}

pytestmark = pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64-static")),
                                reason="needs aarch64-linux-gnu-gcc and qemu-aarch64-static (bash scripts/setup.sh)")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("standin-rt")
    sdk.compile_runtime(sdk.release("2.3.2"), "aarch64", out / "librknnrt.so")      # the lab's own interface
    subprocess.run(["aarch64-linux-gnu-gcc", "-O2", "-Wall", "-Werror", "-o", str(out / "probe"),
                    str(STANDINS / "rknn_api_probe.c"), "-ldl"], check=True)
    from tests.lab import rootfs
    return out, rootfs.ensure_unpacked()


def board(tmp: Path, root: Path, soc: str = "rk3588", driver: str | None = "RKNPU driver: v0.9.6") -> Path:
    """A qemu-user prefix: the lab rootfs's libraries plus a device tree (and NPU debugfs file) of `soc`."""
    prefix = tmp / f"board-{soc}-{driver is not None}"
    if not prefix.exists():
        (prefix / "proc/device-tree").mkdir(parents=True)
        for d in ("lib", "usr", "etc"):
            (prefix / d).symlink_to(root / d)
        (prefix / "proc/device-tree/compatible").write_bytes(f"rockchip,{soc}-evb\0rockchip,{soc}\0".encode())
        if driver:
            (prefix / "sys/kernel/debug/rknpu").mkdir(parents=True)
            (prefix / "sys/kernel/debug/rknpu/version").write_text(driver + "\n")
    return prefix


def probe(build, model: Path, *args, soc="rk3588", driver="RKNPU driver: v0.9.6", env=None):
    out, root = build
    prefix = board(out, root, soc, driver)
    p = subprocess.run(["qemu-aarch64-static", "-L", str(prefix), str(out / "probe"), str(out / "librknnrt.so"),
                        str(model), *args], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout), p.stderr


def expected_dims(t) -> list[int]:
    """The runtime reports a 4-D tensor it exchanges as NHWC in NHWC order."""
    dims = list(t.shape)
    if len(dims) == 4 and t.layout == "NHWC":
        return [dims[0], dims[2], dims[3], dims[1]]
    return dims


def check_against_reader(result: dict, model_path: Path) -> None:
    model = read_model(model_path)
    assert (result["n_input"], result["n_output"]) == (model.inputs, model.outputs)
    for side, tensors in (("inputs", model.input_tensors), ("outputs", model.output_tensors)):
        for got, t in zip(result[side], tensors):
            assert got["name"] == t.name
            assert got["dims"] == expected_dims(t)
            assert got["n_elems"] == math.prod(t.shape)
            if t.dtype in TYPES:
                assert got["type"] == TYPES[t.dtype], (t.name, t.dtype)
            assert got["qnt_type"] == (2 if t.quant_type == "affine" else 0)
            if t.zero_point:
                assert got["zp"] == t.zero_point[0] and got["scale"] == pytest.approx(t.scale[0], rel=1e-6)


def test_a_generated_model_reports_the_inputs_outputs_dims_and_types_the_reader_reports(build, tmp_path):
    path = modelgen.write(tmp_path / "m.rknn", soc="rk3588", inputs=modelgen.parse_tensors("images:1x3x64x64:int8,aux:1x10:float16"),
                          outputs=modelgen.parse_tensors("boxes:1x84x8400:int8,ids:1x192x192:int64"))
    result, _ = probe(build, path)
    assert result["init"] == 0
    check_against_reader(result, path)
    inp = result["inputs"][0]
    assert (inp["fmt"], inp["size"], inp["size_with_stride"], inp["w_stride"]) == (1, 3 * 64 * 64, 3 * 64 * 64, 64)
    assert result["outputs"][1]["size"] == 192 * 192 * 8


def test_the_version_strings_are_the_releases_and_the_driver_is_read_from_debugfs(build, tmp_path):
    path = modelgen.write(tmp_path / "m.rknn", soc="rk3588")
    result, stderr = probe(build, path)
    assert result["rt_version_string"] == f"librknnrt version: {RT}"
    assert result["api_version"] == RT and result["drv_version"] == "0.9.6"
    assert "[rkdeploy stand-in]" in stderr
    result, _ = probe(build, path, driver=None)
    assert result["drv_version"] == "0.9.8"
    strings = subprocess.run(["strings", str(build[0] / "librknnrt.so")], capture_output=True, text=True).stdout
    assert f"librknnrt version: {RT}" in strings and "RKDEPLOY LAB STAND-IN" in strings


def test_the_run_time_is_deterministic_positive_really_spent_and_divided_by_the_cores_of_the_mask(build, tmp_path):
    path = modelgen.write(tmp_path / "m.rknn", soc="rk3588", size_kb=3000)
    first, _ = probe(build, path)
    again, _ = probe(build, path)
    runs = first["runs"] + again["runs"]
    one = runs[0]["perf_run_us"]
    fb_len = read_model(path).size      # about the FlatBuffer: the formula is 200 + fb/64 + out_elems/256
    assert one > 200 + fb_len // 64 // 2
    assert all(r["perf_run_us"] == one and r["rc"] == 0 for r in runs)
    assert all(r["wall_us"] >= one for r in runs)
    assert [r["frame_id"] for r in first["runs"]] == [1, 2]
    three, _ = probe(build, path, "--mask", "7")
    assert three["set_core_mask"] == 0 and three["runs"][0]["perf_run_us"] == one // 3
    assert first["outputs_get_raw"] == again["outputs_get_raw"]          # deterministic outputs
    assert first["outputs_get_float"]["outputs"][0]["size"] == 4 * 1000  # want_float honoured


def test_core_masks_are_validated_per_soc(build, tmp_path):
    result, _ = probe(build, modelgen.write(tmp_path / "a.rknn", soc="rk3588"))
    assert result["core_masks"] == {"0": 0, "1": 0, "2": 0, "4": 0, "3": 0, "7": 0, "8": -5, "65535": 0}
    result, _ = probe(build, modelgen.write(tmp_path / "b.rknn", soc="rk3566"), soc="rk3568")
    assert result["core_masks"] == {"0": 0, "1": 0, "2": -5, "4": -5, "3": -5, "7": -5, "8": -5, "65535": 0}


def test_the_perf_detail_parses_as_the_runtimes_table_and_sums_to_the_run_time(build, tmp_path):
    path = modelgen.write(tmp_path / "m.rknn", soc="rk3588", outputs=modelgen.parse_tensors("a:1x10:int8,b:1x20:int8"))
    result, _ = probe(build, path)
    perf = parse_perf(result["perf_detail"])
    assert perf is not None and perf.generation == "2.x"
    assert perf.operator_time_us == result["runs"][0]["perf_run_us"]
    assert [layer.op_type for layer in perf.layers] == ["InputOperator", "ConvRelu", "ConvRelu", "Add", "Conv",
                                                        "OutputOperator", "OutputOperator"]
    assert sum(layer.time_us for layer in perf.layers) == perf.operator_time_us
    assert sum(r.total_us for r in perf.ranking) == perf.operator_time_us


def test_memory_sizes_add_up(build, tmp_path):
    path = modelgen.write(tmp_path / "m.rknn", soc="rk3588", size_kb=100)
    result, _ = probe(build, path)
    mem = result["mem_size"]
    io = sum(t["size"] for t in result["inputs"] + result["outputs"])
    assert result["mem_size_rc"] == 0 and mem["total_weight_size"] >= 100 * 1024 - 4096
    assert mem["total_dma_allocated_size"] == mem["total_weight_size"] + mem["total_internal_size"] + io


def test_the_other_calls_work_and_unknown_queries_or_stale_contexts_are_refused(build, tmp_path):
    result, stderr = probe(build, modelgen.write(tmp_path / "m.rknn", soc="rk3588"), "--path")
    assert result["init"] == 0                                    # size 0: the model's path
    assert result["inputs_set"] == 0 and result["outputs_get_before_run"] == -1
    assert result["custom_string_rc"] == 0 and result["perf_detail_rc"] == 0
    assert result["io_mem"] == {"create": 1, "set": 0, "run": 0, "sync": 0, "destroy": 0}
    assert result["unknown_query_rc"] == -5 and "unknown or unsupported query cmd=99" in stderr
    assert (result["destroy"], result["destroy_again"]) == (0, -7)


def test_every_call_is_logged_with_its_arguments_to_the_named_file(build, tmp_path):
    log = tmp_path / "calls.log"
    probe(build, modelgen.write(tmp_path / "m.rknn", soc="rk3588"), env={**os.environ, "RKNN_STANDIN_LOG": str(log)})
    text = log.read_text()
    for call in ("rknn_init(", "rknn_query(ctx=1, cmd=5", "rknn_inputs_set(", "rknn_run(", "rknn_outputs_get(",
                 "rknn_set_core_mask(", "rknn_destroy(ctx=1)"):
        assert call in text, call


def test_a_model_for_another_soc_family_is_refused_with_the_runtimes_message(build, tmp_path):
    result, stderr = probe(build, modelgen.write(tmp_path / "m.rknn", soc="rk3588"), soc="rk3566")
    assert result["init"] == -13
    assert "This rknn model is for rk3588, but current platform is rk3566" in stderr
    result, _ = probe(build, modelgen.write(tmp_path / "s.rknn", soc="rk3568"), soc="rk3566")   # same family
    assert result["init"] == 0


def test_a_model_newer_than_the_runtime_is_refused(build, tmp_path):
    result, stderr = probe(build, modelgen.write(tmp_path / "m.rknn", soc="rk3588", toolkit="2.5.0"))
    assert result["init"] == -6
    assert "RKNN model version is 2.5.0, but current librknnrt.so is support model version <= 2.3.2" in stderr


def test_malformed_models_give_an_error_code_and_never_a_crash(build, tmp_path):
    good = modelgen.write(tmp_path / "m.rknn", soc="rk3588").read_bytes()
    rng = random.Random(7)
    cases = [b"", b"RKNN", b"XXXX" + good[4:], good[:100], good[:-5], good[:-400] + b"}" * 400,
             good.replace(b'"graph"', b'"grap_"'), good.replace(b'"size": [1, 1000]', b'"size": "x"')]
    for _ in range(12):
        b = bytearray(good)
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        cases.append(bytes(b))
    codes = []
    for i, data in enumerate(cases):
        path = tmp_path / f"bad{i}.rknn"
        path.write_bytes(data)
        result, _ = probe(build, path)
        codes.append(result["init"])
    assert all(c == -6 for c in codes[:8]), codes
    assert all(c in (0, -6, -13) for c in codes), codes


@pytest.mark.parametrize("path", rockchip_files.example_models(), ids=lambda p: p.name)
def test_rockchips_own_models_load_with_the_counts_and_dims_the_reader_reports(build, path):
    rockchip_files.need(path, "example model")
    model = read_model(path)
    soc = model.target_platforms[0]
    result, stderr = probe(build, path, soc=soc)
    if model.toolkit_release and model.toolkit_release.release[:3] > (2, 3, 2):     # built by a newer toolkit
        assert result["init"] == -6 and f"RKNN model version is {model.toolkit_release.release[0]}." in stderr
        return
    assert result["init"] == 0, stderr
    check_against_reader(result, path)
    assert result["runs"][0]["perf_run_us"] > 0
    assert parse_perf(result["perf_detail"]).operator_time_us == result["runs"][0]["perf_run_us"]


def test_the_runtime_builds_for_armhf_too(tmp_path):
    if not shutil.which("arm-linux-gnueabihf-gcc"):
        pytest.skip("no arm-linux-gnueabihf-gcc")
    sdk.compile_runtime(sdk.release("2.3.2"), "armhf", tmp_path / "librknnrt.so")
    assert b"librknnrt version: " + RT.encode() in (tmp_path / "librknnrt.so").read_bytes()
