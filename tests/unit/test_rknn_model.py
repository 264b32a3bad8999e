"""The .rknn reader on every real model available, on generated models of every format, and on files that
are not models or whose metadata is malformed; the inspect table on untrusted model text."""
import io
import json
import struct
from pathlib import Path

import pytest
from rich.console import Console

from rkdeploy.models_report import render_model
from rkdeploy.rknn_model import KNOWN_FORMATS, PLAIN_DTYPES, ModelError, read_model
from tests.lab import modelgen
from tests.lab.modelgen import Spec, Tensor
from tests.rockchip_files import example_model, example_models, need, rockchip_dir


def generated(tmp_path, name="gen.rknn", **kwargs):
    return modelgen.write(tmp_path / name, Spec(**kwargs))


def with_metadata(tmp_path, meta: dict, fmt=6):
    """A generated model whose JSON metadata is replaced by `meta`."""
    data = modelgen.generate(Spec(format=fmt))
    flat_len = struct.unpack_from("<Q", data, 16)[0]
    json_at = modelgen.HEADER_SIZE[fmt] + flat_len
    raw = json.dumps(meta).encode()
    path = tmp_path / "bad-meta.rknn"
    path.write_bytes(data[:json_at] + struct.pack("<Q", len(raw)) + raw)
    return path


def test_every_real_model_reads_with_consistent_platform_toolkit_and_tensors():
    models = example_models()
    if not models:
        need(rockchip_dir() / "models", "example models")
    for path in models:
        m = read_model(path)
        assert m.format_version in KNOWN_FORMATS, path
        assert m.target_platforms and all(p.startswith(("rk", "rv")) for p in m.target_platforms), path
        assert m.toolkit_release is not None and m.compiler_version, path
        assert m.inputs == len(m.input_tensors) >= 1 and m.outputs == len(m.output_tensors) >= 1, path
        for t in m.tensors:
            assert t.shape and all(isinstance(d, int) and d > 0 for d in t.shape), (path, t)
            assert t.dtype in PLAIN_DTYPES, (path, t)
            assert t.layout in ("NCHW", "NHWC"), (path, t)
        assert m.size == path.stat().st_size and len(m.sha256) == 64


def test_the_format_1_model_reads_its_24_byte_header_as_rk3566_toolkit_1_1_0_with_two_int8_inputs():
    m = read_model(example_model("rknpu2-c28b080c-RK356X-multiple_input_demo.rknn"))
    assert (m.format_version, m.target_platforms, m.toolkit_version) == (1, ("rk3566",), "1.1.0")
    assert (m.compiler_version, m.compiler_build) == ("1.1.0", "8ba543bd@2021-08-19T10:53:11")
    assert [(t.name, t.shape, t.dtype, t.layout) for t in m.input_tensors] == [
        ("input.1", (1, 1, 128, 128), "int8", "NHWC"), ("input", (1, 3, 128, 128), "int8", "NHWC")]
    assert m.input_tensors[0].quant_type == "affine" and m.input_tensors[0].zero_point == (-128,)
    assert [(t.name, t.shape, t.layout) for t in m.output_tensors] == [("8", (1, 8, 128, 128), "NCHW")]
    assert m.custom_ops == ()


def test_the_format_2_rk3562_model_names_its_compiler_build():
    m = read_model(example_model("rknpu2-4e2101af-RK3562-multiple_input_demo.rknn"))
    assert (m.format_version, m.target_platforms, m.toolkit_version) == (2, ("rk3562",), "1.4.1-source_code")
    assert m.compiler_version == "1.4.1b21" and m.inputs == 2 and m.outputs == 1


def test_the_rk3576_dual_residual_model_has_its_custom_op_and_float16_tensors():
    m = read_model(example_model("rknn-toolkit2-77b71094-RK3576-dual_residual_custom.rknn"))
    assert m.custom_ops == ("cstDualResidual",) and m.target_platforms == ("rk3576",)
    assert [t.dtype for t in m.tensors] == ["float16"] * 4 and m.compiler_version == "1.6.2b0"
    assert all(t.quant_type is None for t in m.tensors)


def test_an_argmax_output_recorded_as_int64_is_int64_and_its_compiler_differs_from_its_toolkit():
    m = read_model(example_model("pphuman_rk3588_tk231.rknn"))
    out = m.output_tensors[0]
    assert (out.name, out.shape, out.dtype, out.quant_type) == ("argmax_0.tmp_0", (1, 192, 192), "int64", None)
    assert str(m.toolkit_release) == "2.3.1" and m.compiler_version == "2.3.2"
    x = m.input_tensors[0]
    assert (x.dtype, x.layout, x.zero_point, x.source_dtype) == ("int8", "NHWC", (0,), "float32")
    assert x.scale == pytest.approx((1 / 127.5,))


@pytest.mark.parametrize("fmt", modelgen.FORMATS)
@pytest.mark.parametrize("soc", ["rk3588", "rk3566", "rk3576", "rv1106", "rv1126b"])
def test_a_generated_model_of_every_format_and_soc_reads_back_as_written(tmp_path, fmt, soc):
    ins = [Tensor("images", (1, 3, 64, 64), "uint8"), Tensor("mask", (1, 64), "float16")]
    outs = [Tensor("boxes", (1, 84, 8400), "int8"), Tensor("ids", (1, 100), "int64"), Tensor("ok", (1,), "bool")]
    m = read_model(generated(tmp_path, soc=soc, format=fmt, toolkit="2.3.2", inputs=ins, outputs=outs,
                             custom_ops=("cstMyOp",)))
    assert (m.format_version, m.target_platforms, m.toolkit_version) == (fmt, (soc,), "2.3.2")
    assert (m.name, m.generated_by) == ("rkdeploy-generated", "tests/lab/modelgen.py")
    assert [(t.name, t.shape, t.dtype) for t in m.input_tensors] == [(t.name, t.shape, t.dtype) for t in ins]
    assert [(t.name, t.shape, t.dtype) for t in m.output_tensors] == [(t.name, t.shape, t.dtype) for t in outs]
    assert m.input_tensors[0].layout == "NHWC" and m.input_tensors[0].quant_type == "affine"
    assert m.output_tensors[1].quant_type is None and m.custom_ops == ("cstMyOp",)
    assert m.compiler_version == "2.3.2" and (m.inputs, m.outputs) == (2, 3)


def test_generated_models_are_deterministic_and_seed_toolkit_and_size_change_them(tmp_path):
    same = modelgen.generate(Spec(soc="rk3588", format=6, toolkit="2.3.2"))
    assert same == modelgen.generate(Spec(soc="rk3588", format=6, toolkit="2.3.2"))
    assert same != modelgen.generate(Spec(soc="rk3588", format=6, toolkit="2.3.2", seed=1))
    assert same != modelgen.generate(Spec(soc="rk3588", format=6, toolkit="2.3.1"))
    big = generated(tmp_path, size_kb=3 * 1024)
    m = read_model(big)
    assert m.size >= 3 * 1024 * 1024 and m.size < 3 * 1024 * 1024 + 64 and m.inputs == 1


def test_the_generator_command_line_writes_a_model_the_reader_reads(tmp_path):
    out = tmp_path / "cli.rknn"
    assert modelgen.main([str(out), "--soc", "rk3568", "--format", "4100", "--toolkit", "1.6.0",
                          "--inputs", "a:1x3x8x8:int8,b:1x4:float32", "--outputs", "y:1x10:int64"]) == 0
    m = read_model(out)
    assert (m.format_version, m.target_platforms, str(m.toolkit_release)) == (4100, ("rk3568",), "1.6.0")
    assert [t.dtype for t in m.tensors] == ["int8", "float32", "int64"]


def test_a_text_file_named_rknn_is_refused_as_not_a_model(tmp_path):
    fake = tmp_path / "model.rknn"
    fake.write_text("hello, I am not a model\n")
    with pytest.raises(ModelError, match="model.rknn: not an RKNN model"):
        read_model(fake)


def test_a_huge_file_that_is_not_a_model_is_refused_from_its_first_bytes(tmp_path, monkeypatch):
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as f:
        f.truncate(2 * 1024 ** 3)                       # sparse: 2 GiB of zeros
    asked = []
    real_open = Path.open

    def spy(self, *args, **kwargs):
        f = real_open(self, *args, **kwargs)
        real_read = f.read
        f.read = lambda n=-1: asked.append(n) or real_read(n)
        return f
    monkeypatch.setattr(Path, "open", spy)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read the whole file"))
    with pytest.raises(ModelError, match="not an RKNN model"):
        read_model(huge)
    assert asked and all(0 <= n <= 64 for n in asked)


@pytest.mark.parametrize("cut", [6, 20, 40, 1000, -10])
def test_a_truncated_model_is_refused_as_truncated(tmp_path, cut):
    data = modelgen.generate(Spec(format=6))
    path = tmp_path / "cut.rknn"
    path.write_bytes(data[:cut])
    with pytest.raises(ModelError, match="truncated"):
        read_model(path)


def test_a_real_model_cut_short_is_refused_as_truncated(tmp_path):
    cut = tmp_path / "cut.rknn"
    cut.write_bytes(example_model("rknpu2-c28b080c-RK356X-multiple_input_demo.rknn").read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated RKNN model .format 1"):
        read_model(cut)


def test_an_unknown_format_version_is_refused_by_number(tmp_path):
    data = bytearray(modelgen.generate(Spec(format=6)))
    struct.pack_into("<Q", data, 8, 7)
    path = tmp_path / "fmt7.rknn"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="unknown RKNN format version 7"):
        read_model(path)


@pytest.mark.parametrize("change,says", [
    ({"input_num": "x"}, '"input_num" is a string'),
    ({"output_num": -1}, '"output_num" is -1'),
    ({"target_platform": 5}, '"target_platform" is a number'),
    ({"target_platform": [1]}, '"target_platform" is a list'),
    ({"version": ["2.3.2"]}, '"version" is a list'),
    ({"name": {"a": 1}}, '"name" is an object'),
    ({"norm_tensor": {}}, '"norm_tensor" is an object'),
    ({"norm_tensor": [5]}, r'"norm_tensor"\[0\] is a number'),
    ({"graph": "input"}, '"graph" is a string'),
    ({"graph": [7]}, r'"graph"\[0\] is a number'),
    ({"graph": [{"left": "input", "left_tensor_id": "a", "right_tensor_id": 0}]}, "expected numbers"),
    (lambda m: m["norm_tensor"][0].update(size="1x3"), "its size is a string"),
    (lambda m: m["norm_tensor"][0].update(size=[1, True]), "its size is a list"),
    (lambda m: m["norm_tensor"][0].update(url=["input"]), r"name \(url\) is a list"),
    (lambda m: m["norm_tensor"][1].update(dtype="int8"), "its dtype is a string"),
    ({"graph": [{"left": "input", "left_tensor_id": 0, "right": "norm_tensor", "right_tensor_id": 99}]},
     "does not have"),
])
def test_metadata_of_the_wrong_json_type_is_refused_with_what_is_wrong(tmp_path, change, says):
    meta = modelgen._metadata(Spec(), "2.3.2")
    change(meta) if callable(change) else meta.update(change)
    with pytest.raises(ModelError, match=says):
        read_model(with_metadata(tmp_path, meta))


def test_odd_but_harmless_metadata_values_do_not_stop_the_reader(tmp_path):
    meta = modelgen._metadata(Spec(), "2.3.2")
    meta.update({"nodes": {"not": "a list"}, "ori_network_platform": 3, "rkdeploy_generated": [1],
                 "graph": meta["graph"] + [{"left": ["x"]}, {"left": "weights"}]})
    m = read_model(with_metadata(tmp_path, meta))
    assert m.inputs == 1 and m.source_framework == "ONNX" and m.generated_by is None


def test_without_json_links_the_flatbuffer_graph_names_the_inputs_and_outputs(tmp_path):
    meta = modelgen._metadata(Spec(), "2.3.2")
    del meta["graph"]
    m = read_model(with_metadata(tmp_path, meta))
    assert [(t.direction, t.name, t.shape, t.dtype) for t in m.tensors] == [
        ("input", "input", (1, 3, 224, 224), "int8"), ("output", "output", (1, 1000), "int8")]


@pytest.mark.parametrize("meta", [[1, 2], "text", 5, None])
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path, meta):
    with pytest.raises(ModelError, match="metadata is not a JSON object"):
        read_model(with_metadata(tmp_path, meta))


def test_metadata_that_is_not_json_is_refused(tmp_path):
    data = modelgen.generate(Spec(format=1))
    flat_len = struct.unpack_from("<Q", data, 16)[0]
    path = tmp_path / "garbage.rknn"
    path.write_bytes(data[:24 + flat_len] + struct.pack("<Q", 9) + b"\xff{garbage")
    with pytest.raises(ModelError, match="not JSON"):
        read_model(path)


def test_a_garbage_flatbuffer_leaves_the_json_facts_and_never_raises_anything_else(tmp_path):
    data = bytearray(modelgen.generate(Spec(format=6)))
    flat_len = struct.unpack_from("<Q", data, 16)[0]
    data[72:64 + flat_len] = bytes((i * 37 + 11) % 256 for i in range(flat_len - 8))
    path = tmp_path / "scrambled.rknn"
    path.write_bytes(bytes(data))
    m = read_model(path)
    assert m.inputs == 1 and m.input_tensors[0].dtype == "int8" and m.compiler_version is None


def render(model) -> str:
    buf = io.StringIO()
    render_model(Console(file=buf, width=120), model)
    return buf.getvalue()


def test_the_inspect_table_shows_tensors_compiler_custom_ops_and_where_the_model_runs(tmp_path):
    m = read_model(generated(tmp_path, soc="rk3566", toolkit="2.3.2", custom_ops=("cstMyOp",),
                             outputs=[Tensor("ids", (1, 100), "int64")]))
    out = render(m)
    for text in ("rk3566, rk3568", "2.3.2 (rkdeploy@generated)", "cstMyOp", "[1, 3, 224, 224]", "NHWC",
                 "affine per-layer", "int64", "ids", "tests/lab/modelgen.py"):
        assert text in out, text


def test_control_characters_and_rich_markup_in_a_model_are_shown_inert(tmp_path):
    evil = "evil\x1b]8;;http://x\x07[link=http://evil]click[/link]\x1b[31m[bold red]red\x9b"
    m = read_model(generated(tmp_path, name="evil.rknn", inputs=[Tensor(evil, (1, 3, 8, 8), "int8")]))
    m2 = read_model(with_metadata(tmp_path, {**modelgen._metadata(Spec(name=evil), "2.3.2\x1b[2J")}))
    for model in (m, m2):
        out = render(model)
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    out = render(m2)                                    # the name row is wide enough to show it whole
    assert "[link=http://evil]click[/link]" in out and "[bold red]red" in out and "2.3.2?[2J" in out
