"""The .rknn reader on the edges a toolkit's own files rarely show: metadata with keys left out or of the wrong
type (each refusal's full message), tensors described only by the JSON or only by the FlatBuffer, dtype and
layout fallbacks, and FlatBuffers whose objects sit at the very ends of the buffer or point outside it. Each
model is built here as bytes (header, FlatBuffer, JSON), so every test names the one fact it varies."""
import hashlib
import json
import re
import struct

import pytest

from rkdeploy.rknn_model import ModelError, plain_dtype, read_model
from tests.lab import modelgen

# The FlatBuffer field positions of docs/rknn-formats.md, spelled out here (not imported) so that the tests
# pin the documented layout rather than whatever the reader's constants say.
ROOT_GRAPHS, ROOT_GENERATOR, ROOT_COMPILER, ROOT_SOURCE = 2, 3, 7, 9
ROOT_IN_JSON, ROOT_OUT_JSON, ROOT_CUSTOM = 12, 13, 21


def assemble(flat: bytes, meta, fmt: int = 6) -> bytes:
    """A whole .rknn file: the format's header, the FlatBuffer, the JSON metadata (a dict, or raw bytes)."""
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return modelgen._header(fmt, len(flat)) + flat + struct.pack("<Q", len(raw)) + raw


def load(tmp_path, data: bytes):
    path = tmp_path / "m.rknn"
    path.write_bytes(data)
    return read_model(path)


def refusal(tmp_path, data: bytes) -> str:
    """The ModelError's message, without the path that starts it."""
    path = tmp_path / "m.rknn"
    path.write_bytes(data)
    with pytest.raises(ModelError) as e:
        read_model(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: "):]


def metadata(inputs=(), outputs=(), **extra) -> dict:
    """JSON metadata whose "graph" links each given norm_tensor entry as the next input (output)."""
    norm, graph = [], []
    for side, tensors in (("input", inputs), ("output", outputs)):
        for slot, t in enumerate(tensors):
            graph.append({"left": side, "left_tensor_id": slot, "right": "norm_tensor", "right_tensor_id": len(norm)})
            norm.append({"tensor_id": len(norm), **t})
    return {"target_platform": ["rk3588"], "version": "2.3.2", "input_num": len(inputs),
            "output_num": len(outputs), "norm_tensor": norm, "graph": graph, **extra}


def flatbuffer(inputs=(), outputs=(), strings=None, nodes=(), graphs=1, indices=None) -> bytes:
    """A FlatBuffer as toolkits write it: root strings (slot -> text) and `graphs` graphs whose tensors are the
    given inputs and outputs, each a dict of name, code (data type byte), shape, method, scale, zp.
    nodes: operator types, dealt to the graphs in turn. indices: the graphs' (input, output) tensor index
    lists, when not simply the tensors in order."""
    b = modelgen._Builder()
    tables = []
    for t in list(inputs) + list(outputs):
        f = {}
        if "code" in t:
            f[0] = ("byte", t["code"])
        if "shape" in t:
            f[4] = ("offset", b.vector("i", t["shape"]))
        if "name" in t:
            f[5] = ("offset", b.string(t["name"]))
        if "method" in t:
            f[6] = ("offset", b.string(t["method"]))
        if "scale" in t:
            f[10] = ("offset", b.vector("f", t["scale"]))
        if "zp" in t:
            f[11] = ("offset", b.vector("i", t["zp"]))
        tables.append(b.table(f))
    node_tables = [b.table({1: ("offset", b.string(op))}) for op in nodes]
    n_in, n = len(inputs), len(inputs) + len(outputs)
    ins, outs = indices or (range(n_in), range(n_in, n))
    graph_tables = [b.table({0: ("offset", b.offsets(tables)), 1: ("offset", b.offsets(node_tables[k::graphs])),
                             2: ("offset", b.vector("i", ins)), 3: ("offset", b.vector("i", outs))})
                    for k in range(graphs)]
    root = {slot: ("offset", b.string(text)) for slot, text in (strings or {}).items()}
    if graphs:
        root[ROOT_GRAPHS] = ("offset", b.offsets(graph_tables))
    return b.finish(b.table(root))


COMPILER = {ROOT_COMPILER: "2.3.2(compiler version: 2.3.2 (abc@2025-01-01))"}


# ---- header and file ------------------------------------------------------------------------------------

def test_a_file_shorter_than_the_24_byte_header_is_refused_with_its_length(tmp_path):
    assert refusal(tmp_path, b"RKNN" + b"\0" * 19) == "truncated RKNN model (23 bytes, shorter than its header)"


def test_a_bare_24_byte_format_1_header_is_refused_for_the_missing_metadata_length(tmp_path):
    header = b"RKNN\0\0\0\0" + struct.pack("<QQ", 1, 0)
    assert refusal(tmp_path, header) == ("truncated RKNN model (format 1: its header says 32 bytes or more, "
                                         "the file has 24)")


def test_a_file_ending_right_after_an_empty_metadata_length_is_read_as_empty_metadata(tmp_path):
    # the length field fits exactly, so the file is not truncated: its (empty) metadata is not JSON
    assert refusal(tmp_path, assemble(b"", b"")) == "RKNN model with unreadable metadata (not JSON)"


def test_metadata_running_past_the_end_of_the_file_names_both_ends(tmp_path):
    data = assemble(b"", b"{}")[:-1]                        # the JSON says 2 bytes, 1 is left
    assert refusal(tmp_path, data) == ("truncated RKNN model (format 6: its metadata ends at byte 74, "
                                       "the file has 73)")


def test_the_format_1_header_is_24_bytes_and_the_others_64(tmp_path):
    for fmt in (1, 2, 4, 6, 4100):
        m = load(tmp_path, assemble(flatbuffer(strings=COMPILER), metadata(), fmt=fmt))
        assert (m.format_version, m.compiler_version) == (fmt, "2.3.2"), fmt


def test_a_missing_file_is_refused_with_the_systems_reason(tmp_path):
    path = tmp_path / "absent.rknn"
    with pytest.raises(ModelError, match=f"^{re.escape(str(path))}: cannot read: No such file or directory$"):
        read_model(path)


def test_a_directory_is_refused_as_unreadable(tmp_path):
    with pytest.raises(ModelError, match="cannot read: Is a directory$"):
        read_model(tmp_path)


def test_metadata_nested_too_deeply_for_the_json_parser_is_refused_as_not_json(tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    assert refusal(tmp_path, assemble(b"", deep)) == "RKNN model with unreadable metadata (not JSON)"


def test_path_size_and_sha256_are_those_of_the_whole_file(tmp_path):
    data = assemble(flatbuffer(strings=COMPILER), metadata())
    m = load(tmp_path, data)
    assert (m.path, m.size, m.sha256) == (str(tmp_path / "m.rknn"), len(data), hashlib.sha256(data).hexdigest())
    assert m.to_dict()["path"] == str(tmp_path / "m.rknn")


def test_a_file_that_is_not_a_model_is_refused_naming_its_first_four_bytes(tmp_path):
    assert refusal(tmp_path, b"hello, not a model") == \
        "not an RKNN model (it starts with b'hell', an RKNN model with b'RKNN')"


def test_an_unknown_format_is_refused_naming_it_as_unsigned_and_the_formats_known(tmp_path):
    data = b"RKNN\0\0\0\0" + struct.pack("<QQ", 2**64 - 1, 2**64 - 1)
    assert refusal(tmp_path, data) == ("unknown RKNN format version 18446744073709551615 (this reader knows "
                                       "1, 2, 4, 6, 4100): a newer toolkit or not a model")


def test_a_flatbuffer_length_with_the_top_bit_set_is_refused_as_truncated(tmp_path):
    data = b"RKNN\0\0\0\0" + struct.pack("<QQ", 6, 2**63) + b"\0" * 60
    assert refusal(tmp_path, data) == (f"truncated RKNN model (format 6: its header says {64 + 2**63 + 8} bytes "
                                       "or more, the file has 84)")


def test_a_metadata_length_with_the_top_bit_set_is_refused_as_truncated(tmp_path):
    data = bytearray(assemble(b"", b"{}"))
    struct.pack_into("<Q", data, 64, 2**64 - 1)
    assert refusal(tmp_path, bytes(data)) == (f"truncated RKNN model (format 6: its metadata ends at byte "
                                              f"{64 + 8 + 2**64 - 1}, the file has 74)")


def test_bytes_after_the_metadata_are_not_part_of_it(tmp_path):
    m = load(tmp_path, assemble(b"", {"name": "m"}) + b"x")
    assert m.name == "m"


def test_a_toolkit_version_that_names_no_release_shows_no_release(tmp_path):
    assert load(tmp_path, assemble(b"", {"version": "custom"})).to_dict()["toolkit_release"] is None
    assert load(tmp_path, assemble(b"", {"version": "2.3.2"})).to_dict()["toolkit_release"] == "2.3.2"


# ---- metadata: what is refused, with the whole message ------------------------------------------------

@pytest.mark.parametrize("change,says", [
    ({"input_num": True}, '"input_num" is a boolean, expected a whole number'),
    ({"input_num": 1.5}, '"input_num" is a number, expected a whole number'),
    ({"output_num": -1}, '"output_num" is -1, expected a whole number of 0 or more'),
    ({"version": 2}, '"version" is a number, expected a version string'),
    ({"name": ["a"]}, '"name" is a list, expected a string'),
    ({"target_platform": {"soc": "rk3588"}}, '"target_platform" is an object, expected a list of SoC names'),
    ({"target_platform": ["rk3588", None]}, '"target_platform" is a list, expected a list of SoC names'),
    ({"virtual_tensor": "t"}, '"virtual_tensor" is a string, expected a list of tensors'),
    ({"const_tensor": [None]}, '"const_tensor"[0] is null, expected a tensor object'),
    ({"norm_tensor": [{"tensor_id": True}]}, '"norm_tensor"[0].tensor_id is a boolean, expected a number'),
    ({"norm_tensor": [{}, {"tensor_id": "1"}]}, '"norm_tensor"[1].tensor_id is a string, expected a number'),
    ({"graph": {"left": "input"}}, '"graph" is an object, expected a list of links'),
    ({"graph": [[]]}, '"graph"[0] is a list, expected an object'),
    ({"graph": [{"left": "output", "left_tensor_id": 0, "right": 3, "right_tensor_id": 0}]},
     '"graph"[0] links output 0 to 3 0: expected numbers and a tensor list name'),
    ({"graph": [{"left": "input", "left_tensor_id": 0, "right_tensor_id": "0"}]},
     "\"graph\"[0] links input 0 to 'norm_tensor' '0': expected numbers and a tensor list name"),
    ({"graph": [{"left": "input", "right": "weights", "right_tensor_id": 0}]},
     '"graph"[0] links input 0 to weights 0, which the model does not have'),
    ({"norm_tensor": [{"url": 5}], "graph": [{"left": "input", "right_tensor_id": 0}]},
     "a tensor's name (url) is a number, expected a string"),
    ({"norm_tensor": [{"url": "x", "size": {"h": 1}}], "graph": [{"left": "input", "right_tensor_id": 0}]},
     "tensor 'x': its size is an object, expected a list of whole numbers"),
    ({"norm_tensor": [{"url": "x", "dtype": ["int8"]}], "graph": [{"left": "input", "right_tensor_id": 0}]},
     "tensor 'x': its dtype is a list, expected an object"),
])
def test_metadata_of_the_wrong_shape_is_refused_with_the_whole_reason(tmp_path, change, says):
    assert refusal(tmp_path, assemble(b"", {**metadata(), **change})) == f"RKNN model with malformed metadata: {says}"


@pytest.mark.parametrize("meta,kind", [(True, "a boolean"), (2.5, "a number"), ("{}", "a string")])
def test_metadata_that_is_a_json_scalar_is_refused_naming_what_it_is(tmp_path, meta, kind):
    assert refusal(tmp_path, assemble(b"", json.dumps(meta).encode())) == \
        f"RKNN model whose metadata is not a JSON object (it is {kind})"


def test_metadata_with_only_the_required_shape_reads_as_an_empty_model(tmp_path):
    m = load(tmp_path, assemble(b"", {}))
    assert (m.target_platforms, m.toolkit_version, m.name, m.inputs, m.outputs) == ((), "", "", 0, 0)
    assert (m.tensors, m.custom_ops, m.compiler_version, m.compiler_build) == ((), (), None, None)
    assert (m.source_framework, m.generated_by) == (None, None)


def test_null_values_read_as_left_out(tmp_path):
    m = load(tmp_path, assemble(b"", {"version": None, "name": None, "input_num": None, "target_platform": None,
                                      "norm_tensor": None, "graph": None}))
    assert (m.toolkit_version, m.name, m.inputs, m.target_platforms) == ("", "", 0, ())


def test_zero_inputs_and_outputs_are_accepted(tmp_path):
    m = load(tmp_path, assemble(b"", {**metadata(), "input_num": 0, "output_num": 0}))
    assert (m.inputs, m.outputs) == (0, 0)


def test_a_single_platform_written_as_a_string_is_one_lowercase_platform(tmp_path):
    m = load(tmp_path, assemble(b"", {**metadata(), "target_platform": "RK3588"}))
    assert m.target_platforms == ("rk3588",)


def test_the_json_source_framework_comes_first_then_the_flatbuffers(tmp_path):
    flat = flatbuffer(strings={**COMPILER, ROOT_SOURCE: "TFLite"})
    both = load(tmp_path, assemble(flat, metadata(ori_network_platform="PyTorch", network_platform="ONNX")))
    assert both.source_framework == "PyTorch"
    assert load(tmp_path, assemble(flat, metadata(ori_network_platform="", network_platform="ONNX"))) \
        .source_framework == "ONNX"
    assert load(tmp_path, assemble(flat, metadata(network_platform=7))).source_framework == "TFLite"
    assert load(tmp_path, assemble(flatbuffer(strings=COMPILER), metadata())).source_framework is None


def test_a_generator_label_that_is_not_a_string_is_not_shown(tmp_path):
    assert load(tmp_path, assemble(b"", metadata(rkdeploy_generated="lab"))).generated_by == "lab"
    assert load(tmp_path, assemble(b"", metadata(rkdeploy_generated=1))).generated_by is None


# ---- the JSON's tensor lists and links ----------------------------------------------------------------

def test_a_tensor_without_tensor_id_is_found_by_its_position_in_its_list(tmp_path):
    meta = {"norm_tensor": [{"url": "a"}, {"url": "b"}],
            "graph": [{"left": "input", "left_tensor_id": 0, "right": "norm_tensor", "right_tensor_id": 1}]}
    assert [t.name for t in load(tmp_path, assemble(b"", meta)).input_tensors] == ["b"]


def test_links_to_virtual_and_const_tensors_find_them_by_tensor_id(tmp_path):
    meta = {"virtual_tensor": [{"tensor_id": 7, "url": "v"}], "const_tensor": [{"tensor_id": 3, "url": "c"}],
            "norm_tensor": [{"tensor_id": 7, "url": "n"}],
            "graph": [{"left": "input", "right": "virtual_tensor", "right_tensor_id": 7},
                      {"left": "output", "right": "const_tensor", "right_tensor_id": 3},
                      {"left": "output", "right_tensor_id": 7}]}
    m = load(tmp_path, assemble(b"", meta))
    assert [(t.direction, t.index, t.name) for t in m.tensors] == [
        ("input", 0, "v"), ("output", 0, "c"), ("output", 1, "n")]


def test_links_of_other_kinds_are_skipped_wherever_they_stand(tmp_path):
    meta = {"norm_tensor": [{"url": "x"}], "graph": [{"left": "weights", "right_tensor_id": 0},
                                                    {"left": "input", "right_tensor_id": 0}]}
    assert [t.name for t in load(tmp_path, assemble(b"", meta)).input_tensors] == ["x"]


def test_two_links_claiming_one_slot_are_both_listed_in_the_order_written(tmp_path):
    meta = {"norm_tensor": [{"url": "a"}, {"url": "b"}],
            "graph": [{"left": "input", "left_tensor_id": 0, "right_tensor_id": 1},
                      {"left": "input", "left_tensor_id": 0, "right_tensor_id": 0}]}
    m = load(tmp_path, assemble(b"", meta))
    assert [(t.index, t.name) for t in m.input_tensors] == [(0, "b"), (0, "a")]


def test_links_are_ordered_by_their_slot_not_by_where_they_are_written(tmp_path):
    meta = {"norm_tensor": [{"url": "first"}, {"url": "second"}],
            "graph": [{"left": "input", "left_tensor_id": 1, "right_tensor_id": 1},
                      {"left": "input", "left_tensor_id": 0, "right_tensor_id": 0}]}
    m = load(tmp_path, assemble(b"", meta))
    assert [(t.index, t.name) for t in m.input_tensors] == [(0, "first"), (1, "second")]


def test_a_tensor_with_only_a_name_has_no_shape_and_an_unknown_dtype(tmp_path):
    t = load(tmp_path, assemble(b"", metadata([{"url": "x"}]))).input_tensors[0]
    assert (t.name, t.shape, t.dtype, t.layout, t.quant_type, t.quant_method) == ("x", (), "unknown", None, None, None)
    assert (t.zero_point, t.scale, t.source_dtype, t.layout_ori) == ((), (), None, None)


def test_a_tensor_without_a_name_is_read_with_an_empty_name(tmp_path):
    t = load(tmp_path, assemble(b"", metadata([{"size": [1, 2]}]))).input_tensors[0]
    assert (t.name, t.shape) == ("", (1, 2))


# ---- dtype, quantization and layout from the JSON alone (no FlatBuffer) ------------------------------

def tensor_from_json(tmp_path, dtype: dict):
    return load(tmp_path, assemble(b"", metadata([{"url": "x", "size": [1, 4], "dtype": dtype}]))).input_tensors[0]


def test_without_a_flatbuffer_the_dtype_is_the_jsons_vx_type_then_its_qnt_type(tmp_path):
    assert tensor_from_json(tmp_path, {"vx_type": "INT16", "qnt_type": "int8"}).dtype == "int16"
    assert tensor_from_json(tmp_path, {"vx_type": "", "qnt_type": "u8"}).dtype == "uint8"
    assert tensor_from_json(tmp_path, {"vx_type": " bfloat16 "}).dtype == "bfloat16"


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
def test_a_json_integer_tensor_with_a_quantization_method_is_affine_per_that_method(tmp_path, dtype):
    t = tensor_from_json(tmp_path, {"vx_type": dtype, "qnt_method": "channel"})
    assert (t.quant_type, t.quant_method, t.scale, t.zero_point) == ("affine", "channel", (), ())


def test_a_json_integer_tensor_with_only_a_quantized_type_is_affine_with_no_method(tmp_path):
    t = tensor_from_json(tmp_path, {"vx_type": "int8", "qnt_type": "int8", "qnt_method": ""})
    assert (t.quant_type, t.quant_method) == ("affine", None)


def test_a_quantization_method_that_is_not_text_is_not_shown(tmp_path):
    t = tensor_from_json(tmp_path, {"vx_type": "int8", "qnt_method": 1})
    assert (t.quant_type, t.quant_method) == ("affine", None)


@pytest.mark.parametrize("dtype", ["float16", "int32", "int64"])
def test_a_json_tensor_that_is_not_a_small_integer_is_not_quantized_even_with_a_method(tmp_path, dtype):
    t = tensor_from_json(tmp_path, {"vx_type": dtype, "qnt_type": dtype, "qnt_method": "layer"})
    assert (t.dtype, t.quant_type, t.quant_method) == (dtype, None, None)


def test_an_int8_tensor_with_no_quantization_recorded_is_not_quantized(tmp_path):
    assert tensor_from_json(tmp_path, {"vx_type": "int8", "qnt_type": "", "qnt_method": ""}).quant_type is None


@pytest.mark.parametrize("written,plain", [
    ("float32", "float32"), ("float", "float32"), ("fp32", "float32"), ("f32", "float32"),
    ("float16", "float16"), ("fp16", "float16"), ("f16", "float16"), ("half", "float16"),
    ("int8", "int8"), ("i8", "int8"), ("uint8", "uint8"), ("u8", "uint8"), ("int16", "int16"), ("i16", "int16"),
    ("int32", "int32"), ("i32", "int32"), ("int64", "int64"), ("i64", "int64"), ("bool", "bool"), ("bool8", "bool"),
    (" FP16\n", "float16"), ("Float", "float32"), (" qint4 ", "qint4"), ("", None), ("  ", None), (None, None),
    (8, None), (["int8"], None),
])
def test_every_dtype_name_a_toolkit_writes_maps_to_its_plain_name_and_others_stay_as_written(written, plain):
    assert plain_dtype(written) == plain


# ---- what the FlatBuffer adds ----------------------------------------------------------------------------

def test_the_flatbuffers_type_code_wins_over_every_name(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 10}], strings={ROOT_IN_JSON: '{"x": {"dtype": "int8"}}'})
    t = load(tmp_path, assemble(flat, metadata([{"url": "x", "dtype": {"vx_type": "int8"}}]))).input_tensors[0]
    assert t.dtype == "float16"


def test_the_io_json_dtype_comes_before_the_metadatas_names(tmp_path):
    flat = flatbuffer([{"name": "x"}], strings={ROOT_IN_JSON: '{"x": {"dtype": "bool8"}}'})
    t = load(tmp_path, assemble(flat, metadata([{"url": "x", "dtype": {"vx_type": "int8"}}]))).input_tensors[0]
    assert t.dtype == "bool"


def test_an_unverified_type_code_is_shown_raw_when_nothing_names_the_dtype(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 13}], [{"name": "y", "code": 2}])
    m = load(tmp_path, assemble(flat, metadata([{"url": "x"}], [{"url": "y", "dtype": {"vx_type": "uint8"}}])))
    assert [t.dtype for t in m.tensors] == ["unknown(data_type=13)", "uint8"]


def test_a_type_code_of_zero_is_shown_raw_too(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 0}])
    assert load(tmp_path, assemble(flat, metadata([{"url": "x"}]))).input_tensors[0].dtype == "unknown(data_type=0)"


def test_a_nameless_flatbuffer_tensor_stands_for_the_json_tensor_at_its_position(tmp_path):
    flat = flatbuffer([{"name": "a", "code": 1}, {"code": 7, "scale": [0.5], "zp": [3]}])
    m = load(tmp_path, assemble(flat, metadata([{"url": "b"}, {"url": "c"}])))
    assert [(t.name, t.dtype, t.scale, t.zero_point) for t in m.input_tensors] == [
        ("b", "unknown", (), ()), ("c", "int64", (0.5,), (3,))]


def test_a_json_tensor_is_matched_by_name_wherever_the_flatbuffer_lists_it(tmp_path):
    flat = flatbuffer([{"name": "b", "code": 10}, {"name": "a", "code": 6}])
    m = load(tmp_path, assemble(flat, metadata([{"url": "a"}, {"url": "b"}])))
    assert [(t.name, t.dtype) for t in m.input_tensors] == [("a", "int32"), ("b", "float16")]


def test_a_tensor_matched_by_name_is_not_replaced_by_a_nameless_one_at_its_position(tmp_path):
    flat = flatbuffer([{"code": 7}, {"name": "a", "code": 10}])
    m = load(tmp_path, assemble(flat, metadata([{"url": "a"}, {"url": "z"}])))
    assert [(t.name, t.dtype) for t in m.input_tensors] == [("a", "float16"), ("z", "unknown")]


def test_json_tensors_beyond_the_flatbuffers_inputs_keep_their_json_facts(tmp_path):
    flat = flatbuffer([], strings=COMPILER)
    t = load(tmp_path, assemble(flat, metadata([{"url": "x", "dtype": {"vx_type": "uint8"}}]))).input_tensors[0]
    assert (t.dtype, t.quant_type) == ("uint8", None)


def test_the_jsons_size_is_the_shape_shown_even_where_the_flatbuffer_records_another(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 3, "shape": [1, 8]}])
    t = load(tmp_path, assemble(flat, metadata([{"url": "x", "size": [1, 3]}]))).input_tensors[0]
    assert (t.shape, t.dtype) == ((1, 3), "int8")


def test_without_json_links_each_flatbuffer_tensor_is_an_input_or_output_with_its_own_name_and_shape(tmp_path):
    flat = flatbuffer([{"name": "i0", "code": 3, "shape": [1, 2]}, {"name": "i1", "code": 1}],
                      [{"name": "o", "code": 7, "shape": [5]}])
    m = load(tmp_path, assemble(flat, {"input_num": 2, "output_num": 1}))
    assert [(t.direction, t.index, t.name, t.shape, t.dtype) for t in m.tensors] == [
        ("input", 0, "i0", (1, 2), "int8"), ("input", 1, "i1", (), "float32"), ("output", 0, "o", (5,), "int64")]


def test_a_dynamic_dimension_in_the_flatbuffers_shape_reads_as_minus_one(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 1, "shape": [-1, 3]}])
    assert load(tmp_path, assemble(flat, {})).input_tensors[0].shape == (-1, 3)


def test_a_flatbuffer_scale_or_zero_point_alone_makes_a_tensor_affine(tmp_path):
    flat = flatbuffer([{"name": "s", "code": 3, "scale": [0.25]}, {"name": "z", "code": 3, "zp": [-128]}])
    m = load(tmp_path, assemble(flat, metadata([{"url": "s"}, {"url": "z"}])))
    assert [(t.quant_type, t.scale, t.zero_point) for t in m.input_tensors] == [
        ("affine", (0.25,), ()), ("affine", (), (-128,))]


def test_a_float_tensor_with_a_scale_is_still_affine_per_the_flatbuffers_method(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 10, "method": "channel", "scale": [1.0, 2.0], "zp": [0, 1]}])
    t = load(tmp_path, assemble(flat, metadata([{"url": "x", "dtype": {"qnt_method": "layer"}}]))).input_tensors[0]
    assert (t.quant_type, t.quant_method, t.scale, t.zero_point) == ("affine", "channel", (1.0, 2.0), (0, 1))


def test_the_io_json_layout_is_shown_in_capitals_and_an_empty_one_not_at_all(tmp_path):
    flat = flatbuffer([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}],
                      strings={ROOT_IN_JSON: json.dumps({"a": {"layout": "nhwc"}, "b": {"layout": ""},
                                                         "c": {"layout": 4}, "d": "NCHW"})})
    m = load(tmp_path, assemble(flat, metadata([{"url": "a"}, {"url": "b"}, {"url": "c"}, {"url": "d"}])))
    assert [t.layout for t in m.input_tensors] == ["NHWC", None, None, None]


def test_the_output_json_describes_outputs_and_not_inputs(tmp_path):
    flat = flatbuffer([{"name": "x"}], [{"name": "x"}],
                      strings={ROOT_IN_JSON: '{"x": {"dtype": "int8", "layout": "NHWC"}}',
                               ROOT_OUT_JSON: '{"x": {"dtype": "float32", "layout": "NCHW"}}'})
    m = load(tmp_path, assemble(flat, metadata([{"url": "x"}], [{"url": "x"}])))
    assert [(t.direction, t.dtype, t.layout) for t in m.tensors] == [
        ("input", "int8", "NHWC"), ("output", "float32", "NCHW")]


@pytest.mark.parametrize("io_json", ["not json", "[1]", "[[[" * 10_000])
def test_an_io_json_that_is_not_a_json_object_is_ignored(tmp_path, io_json):
    flat = flatbuffer([{"name": "x"}], strings={**COMPILER, ROOT_IN_JSON: io_json})
    m = load(tmp_path, assemble(flat, metadata([{"url": "x", "dtype": {"vx_type": "int8"}}])))
    assert (m.input_tensors[0].dtype, m.input_tensors[0].layout, m.compiler_version) == ("int8", None, "2.3.2")


def generator(attrs) -> dict:
    return {ROOT_GENERATOR: repr({"attrs": attrs, "quant_tab": {}})}


def test_the_generator_literal_gives_the_source_dtype_and_original_layout(tmp_path):
    flat = flatbuffer([{"name": "a"}, {"name": "b"}, {"name": "c"}],
                      strings=generator({"a": {"dtype": "fp32", "layout_ori": "nchw", "layout": "nhwc"},
                                         "b": {"layout": "nhwc"}, "c": "float32"}))
    m = load(tmp_path, assemble(flat, metadata([{"url": "a"}, {"url": "b"}, {"url": "c"}])))
    assert [(t.source_dtype, t.layout_ori) for t in m.input_tensors] == [
        ("float32", "NCHW"), (None, "NHWC"), (None, None)]


def test_an_original_layout_that_is_empty_or_not_text_is_not_shown(tmp_path):
    flat = flatbuffer([{"name": "a"}, {"name": "b"}], strings=generator({"a": {"layout_ori": ""}, "b": {"layout": 1}}))
    m = load(tmp_path, assemble(flat, metadata([{"url": "a"}, {"url": "b"}])))
    assert [t.layout_ori for t in m.input_tensors] == [None, None]


@pytest.mark.parametrize("text", ["{'attrs': ['a']}", "{'attrs': {'a': {'dtype': 'int8'}}", "{1: 2} + x",
                                  "{'attrs'}", "{'attrs': {'a': {'dtype': 'int8'}}, 'x': f(1)}",
                                  "{'attrs': {'a': {'dtype': 'int8'}}, [1]: 2}"])
def test_a_generator_field_that_is_not_a_dict_literal_with_attrs_is_ignored(tmp_path, text):
    flat = flatbuffer([{"name": "a"}], strings={**COMPILER, ROOT_GENERATOR: text})
    m = load(tmp_path, assemble(flat, metadata([{"url": "a"}])))
    assert (m.input_tensors[0].source_dtype, m.compiler_version) == (None, "2.3.2")


def test_a_generator_literal_of_a_million_characters_or_more_is_not_evaluated(tmp_path):
    def flat_of_length(n):
        head = "{'attrs': {'a': {'dtype': 'int8'}}, 'pad': '"
        return flatbuffer([{"name": "a"}], strings={ROOT_GENERATOR: head + "x" * (n - len(head) - 2) + "'}"})
    below = load(tmp_path, assemble(flat_of_length(999_999), metadata([{"url": "a"}])))
    at = load(tmp_path, assemble(flat_of_length(1_000_000), metadata([{"url": "a"}])))
    assert (below.input_tensors[0].source_dtype, at.input_tensors[0].source_dtype) == ("int8", None)


def test_the_compiler_version_without_a_build_is_read_alone(tmp_path):
    m = load(tmp_path, assemble(flatbuffer(strings={ROOT_COMPILER: "compiler version: 1.4.2b4"}), metadata()))
    assert (m.compiler_version, m.compiler_build) == ("1.4.2b4", None)


def test_the_first_root_field_naming_a_compiler_gives_its_version(tmp_path):
    flat = flatbuffer(strings={ROOT_GENERATOR: "Generated from compiler version: 1.1.0 (8ba543bd@2021)",
                               ROOT_COMPILER: "1.1.0(compiler version: 9.9.9 (other))"})
    m = load(tmp_path, assemble(flat, metadata(), fmt=1))
    assert (m.compiler_version, m.compiler_build) == ("1.1.0", "8ba543bd@2021")


def test_a_compiler_version_inside_the_io_json_fields_is_not_taken_for_the_models(tmp_path):
    flat = flatbuffer(strings={ROOT_IN_JSON: '{"compiler version: 6.6.6": {}}',
                               ROOT_OUT_JSON: '{"compiler version: 7.7.7": {}}'})
    m = load(tmp_path, assemble(flat, metadata()))
    assert (m.compiler_version, m.compiler_build) == (None, None)


def test_custom_operators_come_from_the_custom_op_field_the_node_types_and_the_json_nodes_once_each(tmp_path):
    flat = flatbuffer(strings={ROOT_CUSTOM: " cstA; cstB,Conv\tcstA "}, nodes=["cstC", "Conv", "cstB", "cstC"])
    meta = metadata(nodes=[{"op": "cstD"}, {"op": "cstA"}, "cstE", {"op": 5}, {"op": "RKNN_OP_NNBG"}, {"op": "cstD"}])
    assert load(tmp_path, assemble(flat, meta)).custom_ops == ("cstA", "cstB", "cstC", "cstD")


def test_node_types_of_every_graph_count_but_tensors_only_of_the_first(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 10}], nodes=["Conv", "cstSecond"], graphs=2)
    m = load(tmp_path, assemble(flat, metadata([{"url": "x"}])))
    assert m.custom_ops == ("cstSecond",) and m.input_tensors[0].dtype == "float16"


def test_tensor_indices_outside_the_graphs_tensor_list_are_skipped(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 10}], [{"name": "y", "code": 7}], strings=COMPILER,
                      indices=([-1, 0, 2], [1, 5]))
    m = load(tmp_path, assemble(flat, {}))
    assert [(t.direction, t.name, t.dtype) for t in m.tensors] == [("input", "x", "float16"), ("output", "y", "int64")]
    assert m.compiler_version == "2.3.2"


def test_a_flatbuffer_without_graphs_still_gives_its_strings(tmp_path):
    m = load(tmp_path, assemble(flatbuffer(strings={**COMPILER, ROOT_SOURCE: "ONNX"}, graphs=0), metadata()))
    assert (m.compiler_version, m.source_framework, m.tensors) == ("2.3.2", "ONNX", ())


def test_a_flatbuffer_with_another_file_identifier_is_not_read(tmp_path):
    flat = flatbuffer([{"name": "x", "code": 10}], strings=COMPILER)
    m = load(tmp_path, assemble(flat[:4] + b"TFL3" + flat[8:], metadata([{"url": "x"}])))
    assert (m.compiler_version, m.input_tensors[0].dtype) == (None, "unknown")


# ---- FlatBuffer bounds: objects at the very ends of the buffer, offsets that point outside ----------------

def with_root_field(slot: int, target: bytes) -> bytes:
    """A FlatBuffer whose root table has a compiler string at 7 and, at `slot`, an offset to `target` bytes,
    which are the last bytes of the buffer (written first, so nothing follows them)."""
    b = modelgen._Builder()
    b.buf[0:0] = target
    pos = len(b.buf)
    compiler = b.string(COMPILER[ROOT_COMPILER])
    return b.finish(b.table({ROOT_COMPILER: ("offset", compiler), slot: ("offset", pos)}))


def test_a_string_whose_terminator_is_the_last_byte_of_the_flatbuffer_is_read(tmp_path):
    flat = with_root_field(ROOT_SOURCE, struct.pack("<I", 4) + b"ONNX\0")
    assert load(tmp_path, assemble(flat, metadata())).source_framework == "ONNX"


def test_a_string_that_is_not_utf_8_is_read_with_replacement_characters(tmp_path):
    flat = with_root_field(ROOT_SOURCE, struct.pack("<I", 5) + b"ON\xffNX\0")
    assert load(tmp_path, assemble(flat, metadata())).source_framework == "ON\ufffdNX"


def test_a_string_without_its_terminator_is_not_read_but_the_rest_is(tmp_path):
    flat = with_root_field(ROOT_SOURCE, struct.pack("<I", 4) + b"ONNX")
    m = load(tmp_path, assemble(flat, metadata()))
    assert (m.source_framework, m.compiler_version) == (None, "2.3.2")


@pytest.mark.parametrize("target", [struct.pack("<I", 5) + b"ONNX", struct.pack("<I", 0xFFFFFFF0) + b"ONNX\0", b"\4\0"])
def test_a_string_running_past_the_end_of_the_flatbuffer_is_not_read_but_the_rest_is(tmp_path, target):
    m = load(tmp_path, assemble(with_root_field(ROOT_SOURCE, target), metadata()))
    assert (m.source_framework, m.compiler_version) == (None, "2.3.2")


def test_a_vector_ending_at_the_last_byte_of_the_flatbuffer_is_read(tmp_path):
    # the graph's output index vector is written first, so it ends the buffer
    b = modelgen._Builder()
    outs = b.vector("i", [0])
    tensor = b.table({0: ("byte", 7), 5: ("offset", b.string("y"))})
    graph = b.table({0: ("offset", b.offsets([tensor])), 3: ("offset", outs)})
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", b.offsets([graph]))}))
    assert flat.endswith(struct.pack("<Ii", 1, 0))
    m = load(tmp_path, assemble(flat, {}))
    assert [(t.name, t.dtype) for t in m.output_tensors] == [("y", "int64")]


def test_an_empty_vector_ending_the_flatbuffer_is_read_as_empty(tmp_path):
    b = modelgen._Builder()
    outs = b.vector("i", [])
    graph = b.table({3: ("offset", outs)})
    compiler = b.string(COMPILER[ROOT_COMPILER])
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", b.offsets([graph])), ROOT_COMPILER: ("offset", compiler)}))
    assert flat.endswith(struct.pack("<I", 0))
    m = load(tmp_path, assemble(flat, {}))
    assert (m.compiler_version, m.output_tensors) == ("2.3.2", ())


def test_an_empty_table_list_ending_the_flatbuffer_is_read_as_empty(tmp_path):
    b = modelgen._Builder()
    tensors = b.offsets([])
    graph = b.table({0: ("offset", tensors), 2: ("offset", b.vector("i", [0]))})
    compiler = b.string(COMPILER[ROOT_COMPILER])
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", b.offsets([graph])), ROOT_COMPILER: ("offset", compiler)}))
    assert flat.endswith(struct.pack("<I", 0))
    m = load(tmp_path, assemble(flat, {}))
    assert (m.compiler_version, m.input_tensors) == ("2.3.2", ())


def test_a_vector_running_past_the_end_of_the_flatbuffer_makes_it_unreadable(tmp_path):
    b = modelgen._Builder()
    b.buf[0:0] = struct.pack("<Ii", 2, 0)                   # two indices announced, one there
    outs = len(b.buf)
    graph = b.table({3: ("offset", outs)})
    compiler = b.string(COMPILER[ROOT_COMPILER])
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", b.offsets([graph])), ROOT_COMPILER: ("offset", compiler)}))
    assert load(tmp_path, assemble(flat, {})).compiler_version is None


def test_a_table_list_running_past_the_end_of_the_flatbuffer_makes_it_unreadable(tmp_path):
    b = modelgen._Builder()
    b.buf[0:0] = struct.pack("<I", 1)                       # one table announced, no offset to it
    graphs = len(b.buf)
    compiler = b.string(COMPILER[ROOT_COMPILER])
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", graphs), ROOT_COMPILER: ("offset", compiler)}))
    assert load(tmp_path, assemble(flat, {})).compiler_version is None


def test_a_byte_field_in_the_last_byte_of_the_flatbuffer_is_read(tmp_path):
    b = modelgen._Builder()
    tensor = b.table({0: ("byte", 10)})                     # written first: its 3 padding bytes end the buffer
    graph = b.table({0: ("offset", b.offsets([tensor])), 2: ("offset", b.vector("i", [0]))})
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", b.offsets([graph]))}))[:-3]
    assert flat.endswith(b"\x0a")
    t = load(tmp_path, assemble(flat, metadata([{"url": ""}]))).input_tensors[0]
    assert t.dtype == "float16"


def test_a_table_without_fields_ending_the_flatbuffer_is_read(tmp_path):
    b = modelgen._Builder()
    graph = b.table({})                                     # only its vtable offset: the last 4 bytes
    compiler = b.string(COMPILER[ROOT_COMPILER])
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", b.offsets([graph])), ROOT_COMPILER: ("offset", compiler)}))
    m = load(tmp_path, assemble(flat, {}))
    assert (m.compiler_version, m.tensors) == ("2.3.2", ())


def test_a_tensor_with_a_scale_and_no_later_fields_is_read(tmp_path):
    # its vtable ends at the scale (field 10): the zero point (field 11) lies past the vtable, so it is absent
    flat = flatbuffer([{"name": "x", "code": 3, "scale": [0.5]}])
    t = load(tmp_path, assemble(flat, metadata([{"url": "x"}]))).input_tensors[0]
    assert (t.quant_type, t.scale, t.zero_point) == ("affine", (0.5,), ())


def root_vtable() -> bytes:
    """The vtable of a root table whose only field, 7 (the compiler), is 4 bytes into the table."""
    return struct.pack("<HH8H", 20, 8, *([0] * 7 + [4]))


def raw_flatbuffer(soffset: int | None = None) -> bytes:
    """A hand-laid FlatBuffer: root table at 8, its field 7 an offset to a compiler string at 16, and the
    root's vtable appended at the end. soffset: the table's (vtable = 8 - soffset); None: the appended one."""
    text = b"compiler version: 7.7.7"
    string = struct.pack("<I", len(text)) + text + b"\0"
    string += b"\0" * (-len(string) % 4)
    vt_at = 16 + len(string)
    head = struct.pack("<I", 8) + b"RKNN" + struct.pack("<iI", 8 - vt_at if soffset is None else soffset, 4)
    return head + string + root_vtable()


def test_a_vtable_after_its_table_is_read(tmp_path):
    flat = raw_flatbuffer()
    assert flat.endswith(root_vtable())
    assert load(tmp_path, assemble(flat, metadata())).compiler_version == "7.7.7"


def test_a_vtable_before_the_start_of_the_flatbuffer_is_refused_not_taken_from_its_end(tmp_path):
    # 8 - soffset = -20: Python would read the last 20 bytes, which hold a perfectly good vtable
    flat = raw_flatbuffer(soffset=8 + len(root_vtable()))
    assert load(tmp_path, assemble(flat, metadata())).compiler_version is None


def test_a_vtable_at_the_first_byte_of_the_flatbuffer_is_read(tmp_path):
    # The root offset (16) doubles as the vtable's length: 6 slots, whose 1st and 2nd are the identifier's
    # bytes (offsets far outside the buffer, so absent) and whose 4th (the generator field, slot 3) is 4.
    text = b"compiler version: 5.5.5"
    flat = (struct.pack("<I", 16) + b"RKNN" + struct.pack("<HHHH", 0, 4, 0, 0) + struct.pack("<iI", 16, 4)
            + struct.pack("<I", len(text)) + text + b"\0")
    assert load(tmp_path, assemble(flat, metadata())).compiler_version == "5.5.5"


@pytest.mark.parametrize("vt_len", [0, 2, 3, 5, 7])
def test_a_vtable_too_short_or_of_odd_length_makes_the_flatbuffer_unreadable(tmp_path, vt_len):
    # the bad vtable is the graph's, so the root's compiler field would still be readable without the check
    b = modelgen._Builder()
    graph = b.table({})
    compiler = b.string(COMPILER[ROOT_COMPILER])
    root = b.table({ROOT_GRAPHS: ("offset", b.offsets([graph])), ROOT_COMPILER: ("offset", compiler)})
    flat = bytearray(b.finish(root))
    at = len(flat) - graph
    vt = at - struct.unpack_from("<i", flat, at)[0]
    assert struct.unpack_from("<H", flat, vt)[0] == 4
    struct.pack_into("<H", flat, vt, vt_len)
    assert load(tmp_path, assemble(bytes(flat), metadata())).compiler_version is None
    struct.pack_into("<H", flat, vt, 4)
    assert load(tmp_path, assemble(bytes(flat), metadata())).compiler_version == "2.3.2"


def test_a_field_more_than_32_kib_into_its_table_is_read(tmp_path):
    # vtable entries are unsigned 16-bit: 40000 is 40000 bytes into the table, not 25536 bytes before it
    text = b"compiler version: 4.4.4"
    field_at = 8 + 40_000
    string_at = field_at + 4
    vt_at = string_at + 4 + len(text) + 1 + (-(len(text) + 1)) % 4
    flat = bytearray(vt_at)
    flat[0:8] = struct.pack("<I", 8) + b"RKNN"
    struct.pack_into("<i", flat, 8, 8 - vt_at)
    struct.pack_into("<I", flat, field_at, string_at - field_at)
    flat[string_at:string_at + 4 + len(text) + 1] = struct.pack("<I", len(text)) + text + b"\0"
    flat += struct.pack("<HH8H", 20, 40_004, *([0] * 7 + [40_000]))
    assert load(tmp_path, assemble(bytes(flat), metadata())).compiler_version == "4.4.4"


def test_an_offset_is_unsigned_so_a_huge_one_points_past_the_end_not_backwards(tmp_path):
    # 2**32 - n, read as signed, would be n bytes back: here to a compiler string before the table
    text = b"compiler version: 7.7.7"
    string = struct.pack("<I", len(text)) + text + b"\0"
    string += b"\0" * (-len(string) % 4)
    root_at = 8 + len(string)
    table = struct.pack("<iI", -8, (8 - (root_at + 4)) % 2**32)
    flat = struct.pack("<I", root_at) + b"RKNN" + string + table + root_vtable()   # vtable right after
    assert load(tmp_path, assemble(flat, metadata())).compiler_version is None


def test_a_table_list_may_name_the_same_table_many_times(tmp_path):
    # FlatBuffers may share one table: ten offsets to the same 4-byte graph take 40 bytes, not 4 per table
    b = modelgen._Builder()
    graph = b.table({})
    graphs = b.offsets([graph] * 10)
    compiler = b.string(COMPILER[ROOT_COMPILER])
    flat = b.finish(b.table({ROOT_GRAPHS: ("offset", graphs), ROOT_COMPILER: ("offset", compiler)}))
    assert load(tmp_path, assemble(flat, metadata())).compiler_version == "2.3.2"


def test_a_root_offset_past_the_end_makes_the_flatbuffer_unreadable(tmp_path):
    flat = flatbuffer(strings=COMPILER)
    bad = struct.pack("<I", len(flat) + 100) + flat[4:]
    assert load(tmp_path, assemble(bad, metadata())).compiler_version is None
