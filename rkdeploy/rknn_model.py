"""Reading a .rknn file without the toolkit, so models can be checked against boards before anything is
sent and `inv models.inspect` can show what a model expects.

The layout (header per format, the FlatBuffer, the JSON metadata, how tensors, dtypes, layouts,
quantization, the compiler version and custom operators are recorded) is described, with how each
fact was verified, in docs/rknn-formats.md ("The .rknn file").
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .versions import release_of

MAGIC = b"RKNN"
# format version (u64 at offset 8) -> where its FlatBuffer starts (the header's length)
HEADER_SIZE = {1: 24, 2: 64, 4: 64, 6: 64, 4100: 64}
KNOWN_FORMATS = tuple(HEADER_SIZE)

# The plain dtype names rkdeploy shows, from the names the toolkit writes into a model.
PLAIN_DTYPES = ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool")
_DTYPE_ALIASES = {
    "float32": "float32", "float": "float32", "fp32": "float32", "f32": "float32",
    "float16": "float16", "fp16": "float16", "f16": "float16", "half": "float16",
    "int8": "int8", "i8": "int8", "uint8": "uint8", "u8": "uint8",
    "int16": "int16", "i16": "int16", "int32": "int32", "i32": "int32",
    "int64": "int64", "i64": "int64", "bool": "bool", "bool8": "bool",
}
# The FlatBuffer tensor's data_type byte: only the codes seen in real models next to a dtype name or a
# byte size that confirms them (docs/rknn-formats.md). Other codes are shown raw, never guessed.
FB_DTYPES = {1: "float32", 3: "int8", 6: "int32", 7: "int64", 10: "float16"}
_COMPILER_RE = re.compile(r"compiler version:\s*([0-9][\w.+-]*)(?:\s*\(([^)]*)\))?")
_CUSTOM_OP_PREFIX = "cst"          # the toolkit requires custom operator types to start with "cst"


class ModelError(ValueError):
    """The file is not a readable RKNN model; the message says what is wrong with it."""


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a model, as the model records it."""
    direction: str                       # "input" or "output"
    index: int                           # position among the model's inputs (or outputs)
    name: str
    shape: tuple[int, ...]               # dims as recorded (the source framework's order, see layout_ori)
    dtype: str                           # a PLAIN_DTYPES name, or the model's raw value when unknown
    layout: str | None = None            # layout the runtime exchanges the tensor in, e.g. NHWC / NCHW
    quant_type: str | None = None        # e.g. "affine" (asymmetric, zero point + scale); None: not quantized
    quant_method: str | None = None      # "layer" (one scale) or "channel" (per channel)
    zero_point: tuple[int, ...] = ()
    scale: tuple[float, ...] = ()
    source_dtype: str | None = None      # the dtype of the original (pre-conversion) model, when recorded
    layout_ori: str | None = None        # the original model's layout, when recorded

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"], d["zero_point"], d["scale"] = list(self.shape), list(self.zero_point), list(self.scale)
        return d


@dataclass(frozen=True)
class RknnModel:
    path: str
    format_version: int
    target_platforms: tuple[str, ...]
    toolkit_version: str          # as written by the building toolkit, e.g. "2.3.1-source_code"
    name: str
    inputs: int
    outputs: int
    size: int
    sha256: str
    metadata: dict = field(default_factory=dict, hash=False, compare=False)
    input_tensors: tuple[TensorInfo, ...] = ()
    output_tensors: tuple[TensorInfo, ...] = ()
    compiler_version: str | None = None   # e.g. "2.3.2" (can differ from the toolkit's version)
    compiler_build: str | None = None     # e.g. "c978047055@2025-03-29T19:29:52"
    custom_ops: tuple[str, ...] = ()      # custom operator types, e.g. ("cstDualResidual",)
    source_framework: str | None = None   # "ONNX", "PyTorch", ...
    generated_by: str | None = None       # set for models made by tests/lab/modelgen.py

    @property
    def toolkit_release(self):
        return release_of(self.toolkit_version)

    @property
    def tensors(self) -> tuple[TensorInfo, ...]:
        return self.input_tensors + self.output_tensors

    def to_dict(self) -> dict:
        """Everything `models.inspect --json` shows, the model's own JSON metadata last."""
        return {
            "path": self.path, "format_version": self.format_version,
            "target_platforms": list(self.target_platforms), "toolkit_version": self.toolkit_version,
            "toolkit_release": str(self.toolkit_release) if self.toolkit_release else None,
            "compiler_version": self.compiler_version, "compiler_build": self.compiler_build,
            "name": self.name, "inputs": self.inputs, "outputs": self.outputs,
            "input_tensors": [t.to_dict() for t in self.input_tensors],
            "output_tensors": [t.to_dict() for t in self.output_tensors],
            "custom_ops": list(self.custom_ops), "source_framework": self.source_framework,
            "generated_by": self.generated_by, "size": self.size, "sha256": self.sha256,
            "metadata": self.metadata,
        }


def plain_dtype(raw) -> str | None:
    """The plain name for a dtype name the toolkit wrote ("" or None: not recorded; unknown: kept raw)."""
    if raw is None or not isinstance(raw, str) or not raw.strip():
        return None
    return _DTYPE_ALIASES.get(raw.strip().lower(), raw.strip())


def read_model(path: str | Path) -> RknnModel:
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(24)
            if head[:4] != MAGIC:
                raise ModelError(f"{path}: not an RKNN model (it starts with {head[:4]!r}, an RKNN model with b'RKNN')")
            size = path.stat().st_size
            if len(head) < 24:
                raise ModelError(f"{path}: truncated RKNN model ({len(head)} bytes, shorter than its header)")
            fmt, flat_len = struct.unpack_from("<QQ", head, 8)
            if fmt not in HEADER_SIZE:
                raise ModelError(f"{path}: unknown RKNN format version {fmt} (this reader knows "
                                 f"{', '.join(map(str, KNOWN_FORMATS))}): a newer toolkit or not a model")
            json_at = HEADER_SIZE[fmt] + flat_len
            if json_at + 8 > size:
                raise ModelError(f"{path}: truncated RKNN model (format {fmt}: its header says {json_at + 8} bytes "
                                 f"or more, the file has {size})")
            f.seek(0)
            data = f.read()
    except OSError as e:
        raise ModelError(f"{path}: cannot read: {e.strerror or e}") from None
    json_len = struct.unpack_from("<Q", data, json_at)[0]
    if json_at + 8 + json_len > len(data):
        raise ModelError(f"{path}: truncated RKNN model (format {fmt}: its metadata ends at byte "
                         f"{json_at + 8 + json_len}, the file has {len(data)})")
    try:
        meta = json.loads(data[json_at + 8:json_at + 8 + json_len])
    except (ValueError, RecursionError):
        raise ModelError(f"{path}: RKNN model with unreadable metadata (not JSON)") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: RKNN model whose metadata is not a JSON object (it is {_kind(meta)})")
    flat = _FlatModel.read(data[HEADER_SIZE[fmt]:json_at])
    try:
        return _build(path, fmt, data, meta, flat)
    except _Bad as e:
        raise ModelError(f"{path}: RKNN model with malformed metadata: {e}") from None


class _Bad(Exception):
    pass


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _get(meta: dict, key: str, types, default, what: str):
    v = meta.get(key, default)
    if v is None:
        return default
    if not isinstance(v, types) or (isinstance(v, bool) and types is not bool):
        raise _Bad(f'"{key}" is {_kind(v)}, expected {what}')
    return v


def _count(meta: dict, key: str) -> int:
    v = _get(meta, key, int, 0, "a whole number")
    if v < 0:
        raise _Bad(f'"{key}" is {v}, expected a whole number of 0 or more')
    return v


def _build(path: Path, fmt: int, data: bytes, meta: dict, flat: "_FlatModel") -> RknnModel:
    platforms = meta.get("target_platform") or []
    if isinstance(platforms, str):
        platforms = [platforms]
    if not isinstance(platforms, list) or not all(isinstance(p, str) for p in platforms):
        raise _Bad(f'"target_platform" is {_kind(platforms)}, expected a list of SoC names')
    version = _get(meta, "version", str, "", "a version string")
    name = _get(meta, "name", str, "", "a string")
    n_in, n_out = _count(meta, "input_num"), _count(meta, "output_num")
    inputs, outputs = _io_tensors(meta, flat)
    compiler, build = flat.compiler if flat else (None, None)
    source = next((s for s in (meta.get("ori_network_platform"), meta.get("network_platform"), flat and flat.source)
                   if isinstance(s, str) and s), None)
    generated = meta.get("rkdeploy_generated")
    return RknnModel(
        path=str(path), format_version=fmt, target_platforms=tuple(p.lower() for p in platforms),
        toolkit_version=version, name=name, inputs=n_in, outputs=n_out, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), metadata=meta, input_tensors=inputs, output_tensors=outputs,
        compiler_version=compiler, compiler_build=build, custom_ops=_custom_ops(meta, flat),
        source_framework=source if isinstance(source, str) else None,
        generated_by=generated if isinstance(generated, str) else None)


def _tensor_lists(meta: dict) -> dict[str, dict[int, dict]]:
    lists = {}
    for key in ("norm_tensor", "virtual_tensor", "const_tensor"):
        items = _get(meta, key, list, [], "a list of tensors")
        by_id = {}
        for i, t in enumerate(items):
            if not isinstance(t, dict):
                raise _Bad(f'"{key}"[{i}] is {_kind(t)}, expected a tensor object')
            tid = t.get("tensor_id", i)
            if not isinstance(tid, int) or isinstance(tid, bool):
                raise _Bad(f'"{key}"[{i}].tensor_id is {_kind(tid)}, expected a number')
            by_id[tid] = t
        lists[key] = by_id
    return lists


def _io_tensors(meta: dict, flat: "_FlatModel | None") -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """The model's inputs and outputs: the JSON "graph" links input/output slots to tensors."""
    lists = _tensor_lists(meta)
    graph = _get(meta, "graph", list, [], "a list of links")
    slots: dict[str, list[tuple[int, dict]]] = {"input": [], "output": []}
    for i, link in enumerate(graph):
        if not isinstance(link, dict):
            raise _Bad(f'"graph"[{i}] is {_kind(link)}, expected an object')
        side = link.get("left")
        if not isinstance(side, str) or side not in slots:
            continue
        slot, kind, tid = link.get("left_tensor_id", len(slots[side])), link.get("right", "norm_tensor"), link.get("right_tensor_id")
        if not isinstance(slot, int) or not isinstance(kind, str) or not isinstance(tid, int):
            raise _Bad(f'"graph"[{i}] links {side} {slot!r} to {kind!r} {tid!r}: expected numbers and a tensor list name')
        tensor = lists.get(kind, {}).get(tid)
        if tensor is None:
            raise _Bad(f'"graph"[{i}] links {side} {slot} to {kind} {tid}, which the model does not have')
        slots[side].append((slot, tensor))
    result = []
    for side in ("input", "output"):
        fb_tensors = flat.io(side) if flat else []
        if not graph and fb_tensors:           # no links in the JSON: the FlatBuffer's graph names them
            slots[side] = [(i, {"url": t["name"], "size": t["shape"]}) for i, t in enumerate(fb_tensors)]
        infos = []
        for pos, (slot, t) in enumerate(sorted(slots[side], key=lambda s: s[0])):
            infos.append(_tensor_info(side, slot, t, fb_tensors, pos, flat))
        result.append(tuple(infos))
    return result[0], result[1]


def _tensor_info(side: str, slot: int, t: dict, fb_tensors: list[dict], pos: int, flat) -> TensorInfo:
    name = t.get("url", "")
    if not isinstance(name, str):
        raise _Bad(f"a tensor's name (url) is {_kind(name)}, expected a string")
    shape = t.get("size", [])
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise _Bad(f"tensor {name!r}: its size is {_kind(shape)}, expected a list of whole numbers")
    dt = t.get("dtype", {})
    if not isinstance(dt, dict):
        raise _Bad(f"tensor {name!r}: its dtype is {_kind(dt)}, expected an object")
    fb = next((x for x in fb_tensors if x.get("name") == name), None)
    if fb is None and pos < len(fb_tensors) and not fb_tensors[pos].get("name"):
        fb = fb_tensors[pos]
    fb = fb or {}
    io = (flat.io_json(side).get(name) if flat else None) or {}
    attrs = (flat.attrs.get(name) if flat else None) or {}
    # dtype: the FlatBuffer's type code (verified codes only), the model's own I/O dtype name, then the JSON's.
    code = fb.get("data_type")
    dtype = (FB_DTYPES.get(code) or plain_dtype(io.get("dtype")) or plain_dtype(dt.get("vx_type"))
             or plain_dtype(dt.get("qnt_type")) or (f"unknown(data_type={code})" if code is not None else "unknown"))
    scale = tuple(v for v in fb.get("scale", ()) if isinstance(v, float))
    zero_point = tuple(v for v in fb.get("zero_point", ()) if isinstance(v, int))
    method = fb.get("qnt_method") or dt.get("qnt_method") or None
    qtype = None
    if scale or zero_point:
        qtype = "affine"
    elif dtype in ("int8", "uint8", "int16") and (method or dt.get("qnt_type")):
        qtype = "affine"
    layout = io.get("layout")
    layout_ori = attrs.get("layout_ori") or attrs.get("layout") if isinstance(attrs, dict) else None
    return TensorInfo(
        direction=side, index=slot, name=name, shape=tuple(shape), dtype=dtype,
        layout=layout.upper() if isinstance(layout, str) and layout else None,
        quant_type=qtype, quant_method=method if qtype and isinstance(method, str) else None,
        zero_point=zero_point, scale=scale,
        source_dtype=plain_dtype(attrs.get("dtype")) if isinstance(attrs, dict) else None,
        layout_ori=layout_ori.upper() if isinstance(layout_ori, str) and layout_ori else None)


def _custom_ops(meta: dict, flat: "_FlatModel | None") -> tuple[str, ...]:
    found: list[str] = []
    if flat:
        for op in flat.custom_op_names + flat.node_types:
            if op.startswith(_CUSTOM_OP_PREFIX) and op not in found:
                found.append(op)
    nodes = meta.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        op = node.get("op") if isinstance(node, dict) else None
        if isinstance(op, str) and op.startswith(_CUSTOM_OP_PREFIX) and op not in found:
            found.append(op)
    return tuple(found)


# ---- the FlatBuffer (no schema: fields by position, every read bounds-checked) ---------------------------

class _FbError(Exception):
    pass


class _Table:
    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        vt = pos - self._i32(pos)
        vt_len = self._u16(vt)
        if vt_len < 4 or vt_len % 2:
            raise _FbError("bad vtable")
        self.slots = [self._u16(vt + 4 + 2 * i) for i in range(vt_len // 2 - 2)]

    def _chk(self, at: int, n: int) -> None:
        if at < 0 or at + n > len(self.buf):
            raise _FbError("out of range")

    def _u16(self, at):
        self._chk(at, 2)
        return struct.unpack_from("<H", self.buf, at)[0]

    def _i32(self, at):
        self._chk(at, 4)
        return struct.unpack_from("<i", self.buf, at)[0]

    def _u32(self, at):
        self._chk(at, 4)
        return struct.unpack_from("<I", self.buf, at)[0]

    def field(self, i: int) -> int | None:
        o = self.slots[i] if i < len(self.slots) else 0
        return self.pos + o if o else None

    def byte(self, i: int) -> int | None:
        at = self.field(i)
        if at is None:
            return None
        self._chk(at, 1)
        return self.buf[at]

    def _target(self, i: int) -> int | None:
        at = self.field(i)
        return None if at is None else at + self._u32(at)

    def string(self, i: int) -> str | None:
        at = self._target(i)
        if at is None:
            return None
        n = self._u32(at)
        self._chk(at + 4, n + 1)
        if self.buf[at + 4 + n] != 0:
            raise _FbError("not a string")
        return self.buf[at + 4:at + 4 + n].decode("utf-8", "replace")

    def text(self, i: int) -> str | None:
        """A string field, or None where the field holds something else."""
        try:
            return self.string(i)
        except _FbError:
            return None

    def vector(self, i: int, fmt: str) -> list:
        at = self._target(i)
        if at is None:
            return []
        n = self._u32(at)
        size = struct.calcsize("<" + fmt)
        self._chk(at + 4, n * size)
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, at + 4))

    def tables(self, i: int) -> list["_Table"]:
        at = self._target(i)
        if at is None:
            return []
        n = self._u32(at)
        self._chk(at + 4, 4 * n)
        return [_Table(self.buf, at + 4 + 4 * k + self._u32(at + 4 + 4 * k)) for k in range(n)]


# Field positions (docs/rknn-formats.md): Model, Graph, Node and Tensor tables.
M_GRAPHS, M_GENERATOR, M_COMPILER, M_PLATFORM, M_SOURCE, M_INPUT_JSON, M_OUTPUT_JSON, M_CUSTOM_OPS = 2, 3, 7, 8, 9, 12, 13, 21
G_TENSORS, G_NODES, G_INPUTS, G_OUTPUTS = 0, 1, 2, 3
N_TYPE, N_NAME = 1, 2
T_DTYPE, T_KIND, T_SHAPE, T_NAME, T_QMETHOD, T_QTYPE, T_SCALE, T_ZP = 0, 2, 4, 5, 6, 7, 10, 11


class _FlatModel:
    """What rkdeploy reads from the FlatBuffer: per-tensor dtype and quantization, the compiler version,
    the model's own I/O dtype/layout statements and custom operator names."""

    def __init__(self):
        self.compiler: tuple[str | None, str | None] = (None, None)
        self.source: str | None = None
        self._io: dict[str, list[dict]] = {"input": [], "output": []}
        self._io_json: dict[str, dict] = {"input": {}, "output": {}}
        self.attrs: dict = {}
        self.node_types: list[str] = []
        self.custom_op_names: list[str] = []

    @classmethod
    def read(cls, buf: bytes) -> "_FlatModel | None":
        """None when the bytes are not a FlatBuffer this reader understands (the JSON still describes the model)."""
        if len(buf) < 8 or buf[4:8] != MAGIC:
            return None
        try:
            root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
            model = cls()
            model._read(root)
            return model
        except (_FbError, struct.error, IndexError, ValueError):
            return None

    def _read(self, root: _Table) -> None:
        for i in range(len(root.slots)):
            m = _COMPILER_RE.search(root.text(i) or "") if i not in (M_INPUT_JSON, M_OUTPUT_JSON) else None
            if m:
                self.compiler = (m.group(1), m.group(2))
                break
        self.source = root.text(M_SOURCE)
        for side, i in (("input", M_INPUT_JSON), ("output", M_OUTPUT_JSON)):
            try:
                doc = json.loads(root.text(i) or "{}")
            except (ValueError, RecursionError):
                doc = {}
            self._io_json[side] = {k: v for k, v in doc.items() if isinstance(v, dict)} if isinstance(doc, dict) else {}
        gen = root.text(M_GENERATOR) or ""
        if gen.startswith("{") and len(gen) < 1_000_000:
            try:
                doc = ast.literal_eval(gen)            # a Python literal (dict repr): literals only, no code
                attrs = doc.get("attrs") if isinstance(doc, dict) else None
                self.attrs = attrs if isinstance(attrs, dict) else {}
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                pass
        custom = root.text(M_CUSTOM_OPS) or ""
        self.custom_op_names = [s.strip() for s in re.split(r"[,;\s]+", custom) if s.strip()]
        graphs = root.tables(M_GRAPHS)
        if not graphs:
            return
        for g in graphs:
            for node in g.tables(G_NODES):
                t = node.text(N_TYPE)
                if t and t not in self.node_types:
                    self.node_types.append(t)
        g = graphs[0]
        tensors = g.tables(G_TENSORS)
        for side, i in (("input", G_INPUTS), ("output", G_OUTPUTS)):
            for idx in g.vector(i, "i"):
                if 0 <= idx < len(tensors):
                    self._io[side].append(self._tensor(tensors[idx]))

    @staticmethod
    def _tensor(t: _Table) -> dict:
        return {"name": t.text(T_NAME) or "", "data_type": t.byte(T_DTYPE), "kind": t.byte(T_KIND),
                "shape": t.vector(T_SHAPE, "i"), "qnt_method": t.text(T_QMETHOD) or None,
                "qnt_type": t.text(T_QTYPE) or None, "scale": t.vector(T_SCALE, "f"), "zero_point": t.vector(T_ZP, "i")}

    def io(self, side: str) -> list[dict]:
        return self._io[side]

    def io_json(self, side: str) -> dict:
        return self._io_json[side]
