"""`inv convert` with the REAL rknn-toolkit2 2.3.2 (its pinned environment, RKDEPLOY_TOOLKIT_PYTHON; the
`real_toolkit` fixture: a failure under CI=true, a skip elsewhere), on small ONNX models built here with the
`onnx` package inside the toolkit's environment (tests/lab/onnxgen.py): float and int8 for two SoC families, the
accuracy report, each .rknn read back by rkdeploy.rknn_model.read_model, the clear errors, and on one small lab
board: --for-fleet refused for a runtime release that is not the toolkit's, and deploy storing the recipe.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rkdeploy.rknn_model import read_model

ROOT = Path(__file__).resolve().parents[2]
ONNXGEN = ROOT / "tests/lab/onnxgen.py"


def rkdeploy(toolkit: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """This checkout's rkdeploy (cwd first on sys.path), with the real toolkit."""
    env = {**os.environ, "RKDEPLOY_TOOLKIT_PYTHON": toolkit}
    return subprocess.run([sys.executable, "-c", "from rkdeploy.cli import main; main()", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def models(real_toolkit, tmp_path_factory):
    d = tmp_path_factory.mktemp("convert")
    for name, kind, opset in (("two_input", "two_input", 13), ("opset21", "one_input", 21),
                              ("dynamic", "dynamic", 13), ("one_input", "one_input", 13)):
        subprocess.run([real_toolkit, str(ONNXGEN), str(d / f"{name}.onnx"), kind, str(opset)], check=True,
                       capture_output=True, timeout=120)
    # calibration data: 6 lines of two NCHW .npy files (image 0..255, mask 0..1), and a dataset of wrong images
    script = f"""
import numpy as np, cv2
rng = np.random.default_rng(7)
d = {str(d)!r}
with open(d + '/dataset.txt', 'w') as f:
    for i in range(6):
        np.save(f'{{d}}/img{{i}}.npy', (rng.random((1, 3, 32, 32)) * 255).astype(np.float32))
        np.save(f'{{d}}/mask{{i}}.npy', rng.random((1, 3, 32, 32)).astype(np.float32))
        f.write(f'img{{i}}.npy mask{{i}}.npy\\n')
cv2.imwrite(d + '/small.png', (rng.random((20, 24, 3)) * 255).astype(np.uint8))
open(d + '/wrong.txt', 'w').write('small.png\\n')
"""
    subprocess.run([real_toolkit, "-c", script], check=True, capture_output=True, timeout=120)
    return d


def converted(toolkit, models, *args):
    proc = rkdeploy(toolkit, "convert", str(models / "two_input.onnx"), "--target", "rk3588,rk3566,rk3568",
                    "--mean", "0,0,0:0,0,0", "--std", "255,255,255:1,1,1", "--json", *args)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads(proc.stdout)


def check_models(doc, dtype):
    results = doc["results"]
    # rk3566 and rk3568 are one family: one file for both
    assert [(r["target"], r["socs"]) for r in results] == [("rk3588", ["rk3588"]), ("rk3566", ["rk3566", "rk3568"])]
    for r in results:
        assert r["ok"], r
        model = read_model(r["rknn"])
        assert model.target_platforms[0] == r["target"]
        assert model.toolkit_version.startswith("2.3.2")
        assert (model.inputs, model.outputs) == (2, 2)
        assert [t.name for t in model.input_tensors] == ["image", "mask"]
        assert [t.name for t in model.output_tensors] == ["scores", "label"]
        assert model.input_tensors[0].dtype == dtype
        recipe = json.loads(Path(r["recipe"]).read_text())
        assert recipe["model_sha256"] == model.sha256 and recipe["toolkit"] == "2.3.2"
        assert recipe["source"]["sha256"] == __import__("hashlib").sha256(
            Path(doc["model"]).read_bytes()).hexdigest()
        assert recipe["target"] == r["target"] and recipe["options"]["dtype"] == doc["options"]["dtype"]
        # the toolkit's per-layer table, parsed
        rows = r["analysis"]["rows"]
        assert {x["op"] for x in rows} >= {"Conv", "Relu", "MaxPool", "ArgMax"}, r["analysis"]
        assert all(len(x["values"]) == 4 for x in rows)
    return results


def test_float_conversion_for_two_families_is_accurate_and_keeps_its_recipe(real_toolkit, models):
    doc = converted(real_toolkit, models, "--out", str(models / "float"))
    results = check_models(doc, "float16")
    for r in results:
        acc = {a["output"]: a for a in r["accuracy"]}
        assert acc["scores"]["cosine_min"] >= 0.99, acc
        assert acc["scores"]["max_abs"] < 0.05, acc
        assert acc["label"]["equal"] >= 0.95, acc            # argmax: nearly every index the same
        assert acc["scores"]["samples"] == 4                   # random inputs (no dataset)
    # models.inspect shows the recipe
    proc = rkdeploy(real_toolkit, "models.inspect", results[0]["rknn"], "--json")
    assert proc.returncode == 0, proc.stderr
    inspected = json.loads(proc.stdout)
    assert inspected["recipe"]["model_sha256"] == inspected["sha256"] and inspected["recipe"]["stale"] is False
    text = rkdeploy(real_toolkit, "models.inspect", results[0]["rknn"]).stdout
    assert "Recipe" in text and "2.3.2 / rk3588" in text


def test_int8_conversion_with_a_dataset(real_toolkit, models):
    doc = converted(real_toolkit, models, "--out", str(models / "int8"), "--quantize", str(models / "dataset.txt"),
                    "--samples", "3")
    results = check_models(doc, "int8")
    for r in results:
        acc = {a["output"]: a for a in r["accuracy"]}
        assert acc["scores"]["samples"] == 3                   # the dataset's first lines
        assert acc["scores"]["cosine_min"] >= 0.9, acc         # int8 against float: close, not exact
        assert acc["label"]["equal"] >= 0.5, acc
        recipe = json.loads(Path(r["recipe"]).read_text())
        assert recipe["dataset"]["files"] == 12 and len(recipe["dataset"]["sha256"]) == 64
        assert recipe["options"]["dtype"] == "w8a8"


def test_hybrid_step_2_needs_step_1s_files_and_the_two_steps_make_an_int8_model(real_toolkit, models, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    args = ["convert", str(models / "two_input.onnx"), "--target", "rk3588", "--mean", "0,0,0:0,0,0",
            "--std", "255,255,255:1,1,1", "--quantize", str(models / "dataset.txt"), "--work-dir", str(work),
            "--out", str(out), "--no-analysis", "--json"]
    early = rkdeploy(real_toolkit, *args, "--hybrid-step", "2")
    assert early.returncode != 0 and "run --hybrid-step 1 first" in early.stdout + early.stderr, early.stdout[-2000:]
    one = rkdeploy(real_toolkit, *args, "--hybrid-step", "1")
    assert one.returncode == 0, one.stderr[-3000:] + one.stdout[-3000:]
    [first] = json.loads(one.stdout)["results"]
    assert {"two_input.model", "two_input.data", "two_input.quantization.cfg"} <= set(first["work_files"]), first
    assert not list(out.glob("*.rknn"))                   # step 1 leaves the choice of float layers to the user
    two = rkdeploy(real_toolkit, *args, "--hybrid-step", "2")
    assert two.returncode == 0, two.stderr[-3000:] + two.stdout[-3000:]
    [second] = json.loads(two.stdout)["results"]
    model = read_model(second["rknn"])
    assert model.target_platforms[0] == "rk3588" and model.input_tensors[0].dtype == "int8"
    assert [t.name for t in model.output_tensors] == ["scores", "label"]


def _refused(proc):
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stderr


def test_an_opset_the_toolkit_does_not_take_is_named_with_the_fix(real_toolkit, models):
    err = _refused(rkdeploy(real_toolkit, "convert", str(models / "opset21.onnx"), "--target", "rk3588",
                            "--out", str(models / "o")))
    assert "opset is 21" in err and "up to 19" in err and "opset_version=19" in err


def test_dynamic_shapes_without_input_size_list_are_refused_then_converted_with_them(real_toolkit, models):
    err = _refused(rkdeploy(real_toolkit, "convert", str(models / "dynamic.onnx"), "--target", "rk3588",
                            "--out", str(models / "d")))
    assert "not fixed" in err and "image ['N', 3, 'H', 'W']" in err and "--input-size-list" in err
    proc = rkdeploy(real_toolkit, "convert", str(models / "dynamic.onnx"), "--target", "rk3588", "--out",
                    str(models / "d"), "--input-size-list", "1,3,32,32", "--no-analysis", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = read_model(json.loads(proc.stdout)["results"][0]["rknn"])
    assert list(model.input_tensors[0].shape) in ([1, 3, 32, 32], [1, 32, 32, 3])


def test_a_dataset_whose_images_do_not_match_the_input_size_is_refused(real_toolkit, models):
    err = _refused(rkdeploy(real_toolkit, "convert", str(models / "one_input.onnx"), "--target", "rk3588",
                            "--quantize", str(models / "wrong.txt"), "--out", str(models / "w")))
    assert "wrong.txt line 1: small.png is 24x20 with 3 channel(s); the model's input is 32x32 with 3" in err


def test_a_target_the_toolkit_does_not_know_is_refused_with_the_ones_it_knows(real_toolkit, models):
    err = _refused(rkdeploy(real_toolkit, "convert", str(models / "one_input.onnx"), "--target", "rk3399",
                            "--out", str(models / "t"), "--no-analysis"))
    assert "does not know the target 'rk3399'" in err and "rk3588" in err and "rk3566" in err


# --- one small lab: a fleet board whose runtime is 1.5.0 ----------------------------------------------------------

@pytest.mark.lab
def test_for_fleet_refuses_another_runtime_release_and_deploy_stores_the_recipe(real_toolkit, models, tmp_path):
    from tests.e2e.conftest import own_lab, ssh

    with own_lab("cv", profiles=["rk3588-field"]) as lab:            # runtime and server 1.5.0
        board = lab.boards()[0]
        proc = rkdeploy(real_toolkit, "convert", str(models / "two_input.onnx"), "--for-fleet", "--all",
                        "--inventory", str(lab.inventory), "--out", str(tmp_path), "--accept-new-host-keys")
        assert proc.returncode == 1, proc.stderr
        assert "rknn-toolkit2 2.3.2 but the fleet's runtime release is 1.5.0" in proc.stderr
        assert "inv provision --bundle 2.3.2" in proc.stderr and "inv perf.setup --version 1.5.0" in proc.stderr
        assert not list(tmp_path.glob("*.rknn"))
        # a float rk3588 model, deployed with its recipe (--force: the board's 1.5.0 runtime is older than the
        # model's toolkit, which deploy refuses otherwise)
        proc = rkdeploy(real_toolkit, "convert", str(models / "two_input.onnx"), "--target", "rk3588", "--out",
                        str(tmp_path / "m"), "--no-analysis")
        assert proc.returncode == 0, proc.stderr[-2000:]
        model = tmp_path / "m" / "two_input-rk3588.rknn"
        proc = rkdeploy(real_toolkit, "deploy", str(model), "--all", "--inventory", str(lab.inventory),
                        "--name", "demo", "--force", "--model-dir", "/home/rock/models", "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        sha = read_model(model).sha256
        meta = json.loads(ssh(lab, board, f"cat /home/rock/models/demo/versions/{sha[:12]}.json").stdout)
        assert meta["recipe"]["model_sha256"] == sha and meta["recipe"]["target"] == "rk3588"
        assert meta["recipe"]["source"]["sha256"] == json.loads(
            Path(str(model) + ".recipe.json").read_text())["source"]["sha256"]
