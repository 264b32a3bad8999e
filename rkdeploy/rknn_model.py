"""Reading a .rknn file's header without the toolkit (RKNN-NOTES.md §6), so models can be checked
against boards before anything is sent."""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .versions import release_of

MAGIC = b"RKNN"
KNOWN_FORMATS = (2, 6)


class ModelError(ValueError):
    """The file is not a readable RKNN model; the message says what is wrong with it."""


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

    @property
    def toolkit_release(self):
        return release_of(self.toolkit_version)


def read_model(path: str | Path) -> RknnModel:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read: {e.strerror}") from None
    if data[:4] != MAGIC:
        raise ModelError(f"{path}: not an RKNN model (it starts with {data[:4]!r}, an RKNN model with b'RKNN')")
    if len(data) < 72:
        raise ModelError(f"{path}: truncated RKNN model ({len(data)} bytes, shorter than its header)")
    fmt, flat_len = struct.unpack_from("<Q", data, 8)[0], struct.unpack_from("<Q", data, 16)[0]
    json_at = 64 + flat_len
    if json_at + 8 > len(data):
        raise ModelError(f"{path}: truncated RKNN model (header says {json_at + 8} bytes or more, file has {len(data)})")
    json_len = struct.unpack_from("<Q", data, json_at)[0]
    if json_at + 8 + json_len > len(data):
        raise ModelError(f"{path}: truncated RKNN model (its metadata ends at byte {json_at + 8 + json_len}, "
                         f"the file has {len(data)})")
    try:
        meta = json.loads(data[json_at + 8:json_at + 8 + json_len])
    except ValueError:
        raise ModelError(f"{path}: RKNN model with unreadable metadata (not JSON)") from None
    platforms = meta.get("target_platform") or []
    if isinstance(platforms, str):
        platforms = [platforms]
    return RknnModel(
        path=str(path), format_version=fmt, target_platforms=tuple(p.lower() for p in platforms),
        toolkit_version=str(meta.get("version", "")), name=str(meta.get("name", "")),
        inputs=int(meta.get("input_num", 0)), outputs=int(meta.get("output_num", 0)),
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), metadata=meta)
