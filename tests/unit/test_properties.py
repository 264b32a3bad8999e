"""Property-based tests (Hypothesis) at the shared readers of untrusted input: every input gives a result or
the reader's ONE error type, never another exception.

    probe output      parse_probe        -> BoardFacts   or ProbeError
    .rknn files       read_model         -> RknnModel    or ModelError
    inventories       inventory.load     -> Inventory    or InventoryError
    bundle manifests  load_bundle        -> Bundle       or BundleError
    toolkit output    parse_perf/memory  -> a result     or None (the perf parsers never raise)

Bounded for two slow shared cores (the whole file runs in well under 30 s); `deadline=None` because a
loaded CI machine makes per-example timings meaningless. Crashes these found are listed in docs/hardening.md.
"""
from __future__ import annotations

import json
import struct

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from rkdeploy.bundle import BundleError, load_bundle
from rkdeploy.facts import BoardFacts
from rkdeploy.inventory import BOARD_KEYS, GROUP_KEYS, SETTINGS_KEYS, TOP_KEYS, Inventory, InventoryError, load
from rkdeploy.perf_parse import MemoryResult, PerfResult, parse_memory, parse_perf
from rkdeploy.probe import ProbeError, parse_probe
from rkdeploy.rknn_model import ModelError, RknnModel, read_model
from tests.conftest import FIXTURES
from tests.lab import modelgen

FIXTURE_FUNCTION = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_FUNCTION, database=None)
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_FUNCTION, database=None)

PROBE_FIXTURES = sorted((FIXTURES / "probe").glob("*.txt"))
TOOLKIT_FIXTURES = sorted((FIXTURES / "toolkit-output").glob("*.txt"))
PROBE_KEYS = ["uname", "id", "os", "sudo", "compatible", "model", "npu_driver", "npu_node", "file",
              "runtime_version", "server_pid", "server_manager", "server_unit", "systemd", "python", "python_tag",
              "lite2", "pip", "python_h", "gcc", "strings", "df", "model_dir", "model_dir_free", "model_current",
              "model_version", "end"]
# text YAML can hold (no lone surrogates)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
DIGITS = st.sampled_from(["1" * 20000, "9" * 19, "0", "-1", "1.2.3", ".", "\u00b2", "\u0663", "1e400", "nan"])


def _mutated(text: str | bytes, data) -> str | bytes:
    """A real output with a few edits: slices removed, duplicated or replaced by drawn text, lines swapped."""
    empty = text[:0]
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        if not text:
            break
        i = data.draw(st.integers(0, len(text) - 1), label="at")
        j = data.draw(st.integers(i, min(len(text), i + 200)), label="to")
        kind = data.draw(st.sampled_from(["delete", "duplicate", "replace", "insert"]), label="edit")
        if isinstance(text, bytes):
            new = data.draw(st.binary(max_size=40) | st.sampled_from([b"\xff", b"\x00", b"\n", b"=", b"|"]),
                            label="bytes")
        else:
            new = data.draw(TEXT | DIGITS | st.sampled_from(["\n", "=", "|", "end=ok\n", "\x00", "\u2028"]),
                            label="text")
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "replace":
            text = text[:i] + new + text[j:]
        else:
            text = text[:i] + new + text[i:]
    return text if text is not None else empty


# -- the probe parser -----------------------------------------------------------------------------------------

def _probe_ok(output, **kw) -> None:
    try:
        facts = parse_probe(output, **kw)
    except ProbeError:
        return
    assert isinstance(facts, BoardFacts)
    facts.to_dict()                                    # what --json prints must work on whatever was parsed
    _ = (facts.soc, facts.server_version, facts.runtime_version)


@FAST
@given(st.text())
def test_the_probe_parser_takes_any_text(text):
    _probe_ok(text)
    _probe_ok(text, link_lost=True)


@FAST
@given(st.binary())
def test_the_probe_parser_takes_any_bytes(data):
    _probe_ok(data)


@FAST
@given(st.lists(st.tuples(st.sampled_from(PROBE_KEYS), TEXT | DIGITS | st.text()), max_size=30), st.booleans())
def test_the_probe_parser_takes_any_value_for_every_key(lines, end):
    _probe_ok("".join(f"{k}={v}\n" for k, v in lines) + ("end=ok\n" if end else ""))


@FAST
@given(st.sampled_from(PROBE_FIXTURES), st.data())
def test_the_probe_parser_takes_mutated_real_outputs(fixture, data):
    _probe_ok(_mutated(fixture.read_text(), data))
    _probe_ok(_mutated(fixture.read_bytes(), data))


# -- the .rknn reader -------------------------------------------------------------------------------------------

def _model_ok(tmp_path, data: bytes) -> None:
    path = tmp_path / "m.rknn"
    path.write_bytes(data)
    try:
        model = read_model(path)
    except ModelError:
        return
    assert isinstance(model, RknnModel)
    model.to_dict()
    json.dumps(model.to_dict(), default=str)


@FAST
@given(st.binary(max_size=512))
def test_the_model_reader_takes_any_bytes(tmp_path, data):
    _model_ok(tmp_path, data)


@FAST
@given(st.sampled_from(modelgen.FORMATS), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1),
       st.binary(max_size=300))
def test_the_model_reader_takes_any_header_lengths(tmp_path, fmt, flat_len, json_len, body):
    header = b"RKNN\0\0\0\0" + struct.pack("<QQ", fmt, flat_len)
    header += b"\0" * (modelgen.HEADER_SIZE[fmt] - len(header))
    _model_ok(tmp_path, header + body[: flat_len % 301] + struct.pack("<Q", json_len) + body)


_GENERATED = {fmt: modelgen.generate(modelgen.Spec(format=fmt, soc=soc)) for fmt, soc in
              zip(modelgen.FORMATS, ["rk3588", "rk3568", "rk3566", "rk3588", "rk3576"])}


@SLOW
@given(st.sampled_from(sorted(_GENERATED)), st.data())
def test_the_model_reader_takes_mutated_generated_models(tmp_path, fmt, data):
    model = _GENERATED[fmt]
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(model) - 1), st.integers(0, 255)), max_size=8))
    mutated = bytearray(model)
    for at, value in flips:
        mutated[at] = value
    cut = data.draw(st.none() | st.integers(0, len(model)))
    _model_ok(tmp_path, bytes(mutated[:cut]))


@SLOW
@given(st.sampled_from(sorted(_GENERATED)), st.data())
def test_the_model_reader_takes_generated_models_with_any_json_metadata(tmp_path, fmt, data):
    model = _GENERATED[fmt]
    flat_len = struct.unpack_from("<Q", model, 16)[0]
    json_at = modelgen.HEADER_SIZE[fmt] + flat_len
    meta = json.loads(model[json_at + 8:])
    key = data.draw(st.sampled_from(sorted(meta)) | TEXT)
    meta[key] = data.draw(_json_values)
    blob = json.dumps(meta).encode()
    _model_ok(tmp_path, model[:json_at] + struct.pack("<Q", len(blob)) + blob)


_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                            max_leaves=12)


# -- the inventory loader ---------------------------------------------------------------------------------------

_yaml_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | TEXT
                 | st.sampled_from(["22", "22x", "70000", "line1", "~", "", "@x", "a b", "a,b", "1" * 5000]))
_yaml_values = st.recursive(_yaml_scalars, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(TEXT | st.integers(), inner, max_size=4), max_leaves=10)


def _section(keys, values=_yaml_values):
    return st.dictionaries(st.sampled_from(sorted(keys)) | TEXT, values, max_size=6)


_board_specs = _section(BOARD_KEYS) | _yaml_values
_inventories = st.fixed_dictionaries({}, optional={
    "settings": _section(SETTINGS_KEYS) | _yaml_values,
    "defaults": _section(BOARD_KEYS - {"host", "adb"}) | _yaml_values,
    "groups": st.dictionaries(TEXT | st.integers(), _section(GROUP_KEYS) | _yaml_values, max_size=3) | _yaml_values,
    "boards": st.dictionaries(TEXT | st.integers() | st.booleans() | st.none(), _board_specs, max_size=4)
              | _yaml_values,
}) | st.dictionaries(st.sampled_from(sorted(TOP_KEYS)) | TEXT, _yaml_values, max_size=4) | _yaml_values


def _inventory_ok(path, text: str | bytes) -> None:
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    try:
        inv = load(path)
    except InventoryError as e:
        assert "\n" not in str(e) and str(e).startswith(str(path)), str(e)
        return
    assert isinstance(inv, Inventory) and inv.boards
    for board in inv.boards.values():
        assert isinstance(board.host, str) and 1 <= board.port <= 65535
        assert all(isinstance(g, str) for g in board.groups)
    inv.select(all=True)


@FAST
@given(_inventories)
@example({"boards": {"a": {"host": "x", "vars": [1]}}})
@example({"boards": {"a": {"host": "x", "groups": "line1"}}})
@example({"boards": {"a": {"host": "x", "port": float("nan")}}})
@example({"settings": {"known_hosts": "a\0b"}, "boards": {"a": {"host": "x"}}})
def test_the_inventory_loader_takes_any_yaml_document(tmp_path, doc):
    _inventory_ok(tmp_path / "hosts.yaml", yaml.safe_dump(doc, allow_unicode=True))


@FAST
@given(st.text() | st.binary())
def test_the_inventory_loader_takes_any_file_content(tmp_path, text):
    _inventory_ok(tmp_path / "hosts.yaml", text)


# -- the bundle manifest loader ---------------------------------------------------------------------------------

_MANIFEST = {
    "version": "2.3.2", "layout": "1.6+",
    "files": [{"role": "runtime", "arch": "aarch64", "path": "aarch64/librknnrt.so", "dest": "/usr/lib/librknnrt.so",
               "sha256": "ab" * 32, "size": 12, "mode": "0644", "version_string": "librknnrt version: 2.3.2",
               "socs": ["rk3588"]}],
    "wheels": {"cp311": ["rknn_toolkit_lite2-2.3.2-cp311-cp311-linux_aarch64.whl"]},
}
# Values load_bundle once crashed on (an unhashable `layout`, integers over 4300 digits, deep nesting) are
# pinned by test_manifests_that_crashed_the_loader_are_one_bundle_error below.
_manifest_values = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | TEXT
                                | st.sampled_from(["2.3.2", "1.6+", "any", "/usr/lib/x", "../x", "0755", "cp311"]),
                                lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                                max_leaves=8)
_scalar_manifest_values = st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | TEXT


@FAST
@given(st.data())
def test_the_bundle_loader_takes_any_manifest(tmp_path, data):
    doc = json.loads(json.dumps(_MANIFEST))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(["top", "file", "wheels"]))
        if where == "top":
            key = data.draw(st.sampled_from(["version", "layout", "files", "wheels", "parts"]) | TEXT)
            doc[key] = data.draw(_scalar_manifest_values if key == "layout" else _manifest_values)
        elif where == "file" and isinstance(doc.get("files"), list) and doc["files"] \
                and isinstance(doc["files"][0], dict):
            key = data.draw(st.sampled_from(sorted(_MANIFEST["files"][0])) | TEXT)
            doc["files"][0][key] = data.draw(_manifest_values)
        elif where == "wheels" and isinstance(doc.get("wheels"), dict):
            doc["wheels"][data.draw(TEXT | st.just("cp310"))] = data.draw(_manifest_values)
    (tmp_path / "2.3.2").mkdir(exist_ok=True)
    (tmp_path / "2.3.2/bundle.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        bundle = load_bundle(tmp_path, "2.3.2")
    except BundleError:
        return
    bundle.parts()
    bundle.for_arch("aarch64", "rk3588")


@pytest.mark.parametrize("text", [
    "version: '2.3.2'\nlayout: [a]\nfiles: []\n",                         # TypeError: unhashable type: 'list'
    "version: '2.3.2'\nlayout: '1.6+'\nfiles: []\nx: " + "1" * 5000 + "\n",  # ValueError: int over 4300 digits
    "version: " + "[" * 3000 + "]" * 3000 + "\n",                          # RecursionError
])
def test_manifests_that_crashed_the_loader_are_one_bundle_error(tmp_path, text):
    (tmp_path / "2.3.2").mkdir()
    (tmp_path / "2.3.2/bundle.yaml").write_text(text)
    with pytest.raises(BundleError):
        load_bundle(tmp_path, "2.3.2")


# -- the perf parsers -------------------------------------------------------------------------------------------

def _perf_ok(text: str) -> None:
    perf = parse_perf(text)
    assert perf is None or isinstance(perf, PerfResult)
    if perf is not None:
        perf.to_dict()
    memory = parse_memory(text)
    assert memory is None or isinstance(memory, MemoryResult)


@FAST
@given(st.text())
def test_the_perf_parsers_take_any_text(text):
    _perf_ok(text)


_PERF_WORDS = st.sampled_from(["Total Time(us): ", "FPS: ", "Total Operator Elapsed Time(us): ",
                               "Total Operator Elapsed Per Frame Time(us): ", "Total Memory RW Amount(MB): ",
                               "Weight Memory: ", "Internal Tensor Memory: ", "Total Memory: ", "Other Memory: ",
                               "current model size is: ", "'weight_memory': ", "'total_memory': ",
                               "CPU Current Frequency List:", "- ", "ID OpType DataType Target InputShape "
                               "OutputShape Cycles(DDR/NPU/Total) Time(us)", "OpType CallNumber CPUTime(us) "
                               "GPUTime(us) NPUTime(us) TotalTime(us) TimeRatio(%)", "1 Conv INT8 NPU ", "Total ",
                               "Conv ", "=====", "-----", " MiB", " KB", " Byte", "%", "\x1b[0m", " ", "\n"])


@FAST
@given(st.lists(_PERF_WORDS | DIGITS | TEXT, max_size=40))
def test_the_perf_parsers_take_any_mix_of_their_own_words(words):
    _perf_ok("".join(words))


@FAST
@given(st.sampled_from(TOOLKIT_FIXTURES), st.data())
def test_the_perf_parsers_take_mutated_real_outputs(fixture, data):
    _perf_ok(_mutated(fixture.read_text(), data))


@pytest.mark.parametrize("text,check", [
    ("Total Time(us): " + "1" * 20000, lambda p, m: p is None and m is None),
    ("Total Time(us): 1200\nFPS: " + "1" * 20000, lambda p, m: p.total_time_us == 1200 and p.fps is None),
    ("FPS: 1.2.3\nTotal Time(us): 5", lambda p, m: p.fps is None and p.total_time_us == 5),
    ("Total Operator Elapsed Time(us): " + "1" * 20000, lambda p, m: p is None),
    ("CPU Current Frequency List:\n- " + "1" * 20000 + "\n- 1800000\nTotal Time(us): 7",
     lambda p, m: p.frequencies == {"cpu": [1800000]}),
    ("Weight Memory: " + "1" * 20000 + " MiB\nTotal Memory: 2 MiB", lambda p, m: (m.weight, m.total) == (None, 2 << 20)),
    ("Weight Memory: 1.2.3 MiB", lambda p, m: m is None),
    ("current model size is: " + "1" * 20000 + " MiB\nTotal Memory: 1 KB", lambda p, m: m.model_size is None),
    ("{'weight_memory': " + "1" * 20000 + ", 'total_memory': 3}", lambda p, m: (m.weight, m.total) == (None, 3)),
    ("1 Conv INT8 NPU (1,3) (1,8) 10/20/30 " + "1" * 20000, lambda p, m: p is None),
    ("1 Conv INT8 NPU x", lambda p, m: p is None),                      # a layer row without a header: no crash
    ("1" * 20000, lambda p, m: p is None and m is None),
    ("\x1b[" + "1" * 20000, lambda p, m: p is None and m is None),
])
def test_a_20000_digit_or_malformed_number_in_toolkit_output_is_skipped_not_raised(text, check):
    # measured by hand (docs/hardening.md): each of these parses in a few milliseconds
    assert check(parse_perf(text), parse_memory(text))
