"""Valid .rknn files made by rkdeploy, for tests and the lab: any SoC, file format and toolkit version.

A generated model has the real layout (docs/rknn-formats.md, "The .rknn file"): the header of its
format, a FlatBuffer with the model, graph, tensor and node tables at the positions real models use,
then the JSON metadata with the same keys, tensor lists and input/output links as a toolkit's. It is
labelled: name "rkdeploy-generated" and `"rkdeploy_generated": "tests/lab/modelgen.py"` in the JSON,
and its FlatBuffer's format string is "RKNPU rkdeploy-generated". It holds no NPU program: the board's
runtime would refuse to run it, rkdeploy reads, checks, deploys and rolls it back like a real one.

    python -m tests.lab.modelgen OUT.rknn --soc rk3588 --format 6 --toolkit 2.3.2 [--size-kb N]
        [--inputs images:1x3x640x640:int8,mask:1x1x640x640:uint8] [--outputs out:1x84x8400:int64]
        [--custom-op cstMyOp] [--seed N]

The same arguments give the same bytes; another --seed or --toolkit gives another sha256.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import json
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = (1, 2, 4, 6, 4100)
HEADER_SIZE = {1: 24, 2: 64, 4: 64, 6: 64, 4100: 64}
LABEL = "tests/lab/modelgen.py"
NAME = "rkdeploy-generated"
# FlatBuffer data_type codes verified on real models (docs/rknn-formats.md); other dtypes leave the code
# out and are named only in the model's I/O JSON, as the reader then reads them.
FB_CODES = {"float32": 1, "int8": 3, "int32": 6, "int64": 7, "float16": 10}
QUANTIZED = ("int8", "uint8", "int16")


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "int8"


@dataclass
class Spec:
    soc: str = "rk3588"
    format: int = 6
    toolkit: str = "2.3.2"
    inputs: list[Tensor] = field(default_factory=lambda: [Tensor("input", (1, 3, 224, 224), "int8")])
    outputs: list[Tensor] = field(default_factory=lambda: [Tensor("output", (1, 1000), "int8")])
    size_kb: int = 0
    seed: int = 0
    custom_ops: tuple[str, ...] = ()
    name: str = NAME
    compiler: str | None = None       # compiler version; default: the toolkit's release


def parse_tensors(text: str, default_dtype: str = "int8") -> list[Tensor]:
    """`name:1x3x224x224[:dtype]`, comma-separated."""
    tensors = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        parts = item.split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise ValueError(f"tensor {item!r}: write name:1x3x224x224[:dtype]")
        dims = tuple(int(d) for d in parts[1].lower().split("x"))
        if not dims or any(d <= 0 for d in dims):
            raise ValueError(f"tensor {item!r}: dims must be positive whole numbers")
        tensors.append(Tensor(parts[0], dims, parts[2] if len(parts) == 3 else default_dtype))
    return tensors


class _Builder:
    """A minimal FlatBuffer builder: objects are written back to front, children before parents, so every
    offset points forward as FlatBuffers require. Positions are distances from the end of the buffer."""

    def __init__(self):
        self.buf = bytearray()

    def _prepend(self, data: bytes, align: int = 4) -> int:
        pad = (-(len(self.buf) + len(data))) % align
        self.buf[0:0] = data + b"\0" * pad
        return len(self.buf)

    def string(self, s: str) -> int:
        raw = s.encode()
        return self._prepend(struct.pack("<I", len(raw)) + raw + b"\0")

    def vector(self, fmt: str, values) -> int:
        values = list(values)
        return self._prepend(struct.pack(f"<I{len(values)}{fmt}", len(values), *values))

    def raw_bytes(self, data: bytes) -> int:
        return self._prepend(struct.pack("<I", len(data)) + data)

    def offsets(self, targets: list[int]) -> int:
        """A vector of offsets to tables or strings already written."""
        n = len(targets)
        total = 4 + 4 * n
        pad = (-(len(self.buf) + total)) % 4
        start = len(self.buf) + total + pad          # the position of the vector once written
        items = [start - 4 - 4 * k - t for k, t in enumerate(targets)]
        return self._prepend(struct.pack(f"<I{n}I", n, *items))

    def table(self, fields: dict[int, tuple[str, object]]) -> int:
        """fields: slot -> ("offset", position) | ("byte", v) | ("int", v). Returns the table's position."""
        body = bytearray()
        slots: dict[int, int] = {}
        layout = []
        for slot in sorted(fields):
            kind, value = fields[slot]
            size = 1 if kind == "byte" else 4
            while (4 + len(body)) % size:
                body.append(0)
            slots[slot] = 4 + len(body)
            layout.append((kind, value, 4 + len(body)))
            body += b"\0" * size
        while (4 + len(body)) % 4:
            body.append(0)
        obj_len = 4 + len(body)
        n_slots = max(fields) + 1 if fields else 0
        vtable = struct.pack(f"<HH{n_slots}H", 4 + 2 * n_slots, obj_len, *[slots.get(i, 0) for i in range(n_slots)])
        vt_pad = (-len(vtable)) % 4
        # The table goes right after its vtable: table position = current + obj_len (written first), then vtable.
        table_pos = len(self.buf) + obj_len + ((-(len(self.buf) + obj_len)) % 4)
        data = bytearray(struct.pack("<i", 0)) + body
        for kind, value, at in layout:
            if kind == "offset":
                struct.pack_into("<I", data, at, table_pos - at - value)
            elif kind == "byte":
                data[at] = value
            else:
                struct.pack_into("<i", data, at, value)
        pos = self._prepend(bytes(data))
        assert pos == table_pos
        vt_pos = self._prepend(vtable + b"\0" * vt_pad)
        vt_start = vt_pos                     # the vtable's first byte (padding follows it)
        # soffset: table position minus vtable position, in buffer order (vtable comes first, so negative
        # distance from the end means: vtable address = table address - soffset).
        addr_table = len(self.buf) - pos
        addr_vt = len(self.buf) - vt_start
        struct.pack_into("<i", self.buf, addr_table, addr_table - addr_vt)
        return pos

    def finish(self, root: int, identifier: bytes = b"RKNN") -> bytes:
        pad = (-(len(self.buf) + 8)) % 8
        self.buf[0:0] = b"\0" * pad
        total = len(self.buf) + 8
        return struct.pack("<I", total - root) + identifier + bytes(self.buf)


def _quant(t: Tensor, rng: bytes) -> tuple[list[float], list[int], list[float], list[float]]:
    if t.dtype not in QUANTIZED:
        return [], [], [], []
    scale = 0.5 + rng[0] / 64.0
    zp = {"int8": rng[1] - 128, "uint8": rng[1], "int16": rng[1] - 128}[t.dtype]
    lo = (-128 - zp) * scale if t.dtype != "uint8" else -zp * scale
    return [scale], [zp], [lo], [lo + 255 * scale]


def _layout(t: Tensor, side: str) -> str:
    return "NHWC" if side == "input" and len(t.shape) == 4 else "NCHW"     # as real models record them


def _flatbuffer(spec: Spec, version: str, compiler: str, padding: bytes) -> bytes:
    b = _Builder()
    seed_bytes = hashlib.sha256(f"{spec.seed}:{spec.soc}:{spec.format}:{version}".encode()).digest()
    tensors, io_json, attrs = [], {"input": {}, "output": {}}, {}
    all_io = [("input", t) for t in spec.inputs] + [("output", t) for t in spec.outputs]
    for k, (side, t) in enumerate(all_io):
        scale, zp, lo, hi = _quant(t, seed_bytes[2 * k % 30:])
        fields = {3: ("offset", b.vector("i", t.shape)), 4: ("offset", b.vector("i", t.shape)),
                  5: ("offset", b.string(t.name)), 12: ("int", 0)}
        if t.dtype in FB_CODES:
            fields[0] = ("byte", FB_CODES[t.dtype])
        fields[1] = ("byte", 64)
        fields[2] = ("byte", 1 if side == "input" else 2)
        if scale:
            fields.update({6: ("offset", b.string("layer")), 7: ("offset", b.string(t.dtype)),
                           8: ("offset", b.vector("f", lo)), 9: ("offset", b.vector("f", hi)),
                           10: ("offset", b.vector("f", scale)), 11: ("offset", b.vector("i", zp))})
        tensors.append(b.table(fields))
        io_json[side][t.name] = {"dtype": t.dtype, "layout": _layout(t, side)}
        attrs[t.name] = {"idx": [x for s, x in all_io if s == side].index(t), "shape": list(t.shape),
                         "layout": "nchw", "layout_ori": "nchw", "is_output": side == "output",
                         "dtype": t.dtype if t.dtype in ("int64", "int32", "bool") else "float32"}
    nodes = []
    for side, t in all_io:
        op = "InputOperator" if side == "input" else "OutputOperator"
        nodes.append(b.table({1: ("offset", b.string(op)), 2: ("offset", b.string(f"{op}:{t.name}"))}))
    for op in spec.custom_ops:
        nodes.append(b.table({1: ("offset", b.string(op)), 2: ("offset", b.string(f"{op}:{op}_0"))}))
    n_in = len(spec.inputs)
    graph = b.table({0: ("offset", b.offsets(tensors)), 1: ("offset", b.offsets(nodes)),
                     2: ("offset", b.vector("i", range(n_in))),
                     3: ("offset", b.vector("i", range(n_in, len(all_io))))})
    root = {
        1: ("offset", b.string("RKNPU rkdeploy-generated")),
        2: ("offset", b.offsets([graph])),
        3: ("offset", b.string(repr({"attrs": attrs, "generator": LABEL}))),
        7: ("offset", b.string(f"{version}(compiler version: {compiler} (rkdeploy@generated))")),
        8: ("offset", b.string(spec.soc)),
        9: ("offset", b.string("ONNX")),
        12: ("offset", b.string(json.dumps(io_json["input"]))),
        13: ("offset", b.string(json.dumps(io_json["output"]))),
    }
    if spec.custom_ops:
        root[21] = ("offset", b.string(",".join(spec.custom_ops)))
    if padding:
        root[22] = ("offset", b.raw_bytes(padding))    # a field real models do not have: ignored by readers
    return b.finish(b.table(root))


def _metadata(spec: Spec, version: str) -> dict:
    all_io = [("input", t) for t in spec.inputs] + [("output", t) for t in spec.outputs]
    norm, graph, connection = [], [], []
    counters = {"input": 0, "output": 0}
    for tid, (side, t) in enumerate(all_io):
        q = t.dtype in QUANTIZED
        norm.append({"dim_num": len(t.shape), "size": list(t.shape), "tensor_id": tid, "url": t.name,
                     "dtype": {"qnt_method": "layer" if q else "", "qnt_type": t.dtype if q else "",
                               "vx_type": t.dtype}})
        slot = counters[side]
        counters[side] += 1
        graph.append({"left": side, "left_tensor_id": slot, "right": "norm_tensor", "right_tensor_id": tid})
        connection.append({"left": side, "left_tensor_id": slot, "node_id": 0,
                           "right_tensor": {"tensor_id": tid, "type": "norm_tensor"}})
    return {
        "connection": connection, "const_tensor": [], "graph": graph,
        "input_num": len(spec.inputs), "output_num": len(spec.outputs), "name": spec.name,
        "network_platform": "ONNX", "ori_network_platform": "ONNX", "node_num": 1,
        "nodes": [{"input_num": len(spec.inputs), "lid": "npu_network_bin_graph", "name": "nnbg",
                   "nn": {"nbg": {"type": "RKNN_OP_NNBG"}}, "op": "RKNN_OP_NNBG",
                   "output_num": len(spec.outputs), "uid": 0}],
        "norm_tensor": norm, "norm_tensor_num": len(norm), "target_platform": [spec.soc.lower()],
        "version": version, "virtual_tensor": [], "rkdeploy_generated": LABEL,
    }


def generate(spec: Spec) -> bytes:
    """The bytes of a valid .rknn model for `spec`."""
    if spec.format not in FORMATS:
        raise ValueError(f"format {spec.format}: choose one of {', '.join(map(str, FORMATS))}")
    version = spec.toolkit
    compiler = spec.compiler or version.split("-")[0].split("+")[0]
    meta = json.dumps(_metadata(spec, version), sort_keys=True).encode()

    def assemble(padding: bytes) -> bytes:
        flat = _flatbuffer(spec, version, compiler, padding)
        header = _header(spec.format, len(flat))
        return header + flat + struct.pack("<Q", len(meta)) + meta

    data = assemble(b"")
    want, n = spec.size_kb * 1024, 0
    while len(data) < want:                               # padding, in a FlatBuffer field of its own
        n += want - len(data)
        data = assemble(_fill(spec, version, n))
    return data


def _header(fmt: int, flat_len: int) -> bytes:
    header = b"RKNN\0\0\0\0" + struct.pack("<QQ", fmt, flat_len)
    return header + b"\0" * (HEADER_SIZE[fmt] - len(header))


def _fill(spec: Spec, version: str, n: int) -> bytes:
    return hashlib.shake_256(f"rkdeploy-padding:{spec.seed}:{spec.soc}:{spec.format}:{version}".encode()).digest(n)


def write(path: str | Path, spec: Spec | None = None, **kwargs) -> Path:
    """Write a generated model to `path` (a Spec, or its fields as keyword arguments)."""
    spec = spec or Spec(**kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(generate(spec))
    return path


def cached(**kwargs) -> Path:
    """A generated model for these Spec fields, written once under the lab's cache (named by the spec, so
    two callers asking for different models never share a file)."""
    from .host import CACHE_DIR

    spec = Spec(**kwargs)
    key = hashlib.sha256(repr(spec).encode()).hexdigest()[:12]
    path = CACHE_DIR / "generated-models" / f"{spec.soc}-{spec.toolkit}-f{spec.format}-{key}.rknn"
    if not path.exists():
        tmp = write(path.with_name(f".{path.name}.{os.getpid()}"), spec)
        tmp.rename(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.lab.modelgen", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the .rknn file to write")
    p.add_argument("--soc", default="rk3588", help="target platform written into the model")
    p.add_argument("--format", type=int, default=6, choices=FORMATS, help="file format version")
    p.add_argument("--toolkit", default="2.3.2", help="building toolkit's version string, e.g. 2.3.2 or 1.6.0-source_code")
    p.add_argument("--compiler", default=None, help="compiler version (default: the toolkit's release)")
    p.add_argument("--size-kb", type=int, default=0, help="pad the file to at least this many KiB")
    p.add_argument("--inputs", default="input:1x3x224x224:int8", help="name:1x3x224x224[:dtype],...")
    p.add_argument("--outputs", default="output:1x1000:int8", help="name:dims[:dtype],...")
    p.add_argument("--custom-op", action="append", default=[], help="a custom operator type (cst...)")
    p.add_argument("--name", default=NAME, help="the model's name in its metadata")
    p.add_argument("--seed", type=int, default=0, help="another seed gives other quantization and padding bytes")
    a = p.parse_args(argv)
    try:
        spec = Spec(soc=a.soc, format=a.format, toolkit=a.toolkit, inputs=parse_tensors(a.inputs),
                    outputs=parse_tensors(a.outputs), size_kb=a.size_kb, seed=a.seed,
                    custom_ops=tuple(a.custom_op), name=a.name, compiler=a.compiler)
    except ValueError as e:
        p.error(str(e))
    out = write(a.out, spec)
    print(f"{out}: format {a.format}, {a.soc}, toolkit {a.toolkit}, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
