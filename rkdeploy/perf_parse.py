"""Parsers for what rknn-toolkit2's eval_perf / eval_memory print or return, both generations
(RKNN-NOTES.md §5): 1.x `Performance` banner with DDR/NPU/Total cycle columns, 2.x frequency lists,
`Total Time(us)`/`FPS`, the runtime's per-layer table and ranking (with or without a `Total` row),
ANSI colour codes, logger lines, and memory as printed text or as the returned dict (either key style)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

ANSI = re.compile(r"\x1b?\[[0-9;]*m")
# The parsers never raise: text that is not the toolkit's output (or a number no real run prints, such as a
# 20 000-digit one, or "1.2.3") is skipped, and a text with nothing recognisable gives None.
_MAX_DIGITS = 18
_UNITS = {"B": 1, "BYTE": 1, "BYTES": 1, "KIB": 1024, "MIB": 1024 ** 2, "GIB": 1024 ** 3,
          "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


@dataclass
class Layer:
    id: int
    op_type: str
    target: str
    time_us: int


@dataclass
class OperatorRank:
    op_type: str
    calls: int
    cpu_us: int
    npu_us: int
    total_us: int
    ratio_pct: float


@dataclass
class PerfResult:
    generation: str = ""                     # "1.x" or "2.x"
    total_time_us: int | None = None         # whole inference (2.x "Total Time(us)")
    fps: float | None = None
    operator_time_us: int | None = None      # sum of per-layer times (perf_debug)
    memory_rw_kb: float | None = None
    layers: list[Layer] = field(default_factory=list)
    ranking: list[OperatorRank] = field(default_factory=list)
    frequencies: dict[str, list[int]] = field(default_factory=dict)

    @property
    def time_us(self) -> int | None:
        return self.total_time_us or self.operator_time_us

    @property
    def effective_fps(self) -> float | None:
        if self.fps:
            return self.fps
        return round(1e6 / self.time_us, 2) if self.time_us else None

    def to_dict(self) -> dict:
        return {**asdict(self), "time_us": self.time_us, "effective_fps": self.effective_fps}


@dataclass
class MemoryResult:
    weight: int | None = None
    internal: int | None = None
    other: int | None = None
    total: int | None = None
    model_size: int | None = None
    exact: bool = False                      # from the returned dict (bytes), not the rounded printout

    def to_dict(self) -> dict:
        return asdict(self)


def clean(text: str) -> list[str]:
    return [ANSI.sub("", line).rstrip() for line in text.splitlines()]


def _int(value: str) -> int | None:
    """A plain decimal number as printed, or None (not ASCII digits, or longer than any real value)."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS else None


def _float(value: str) -> float | None:
    """A plain decimal number such as 12.5, or None ("1.2.3", ".", a run of digits longer than any real value)."""
    if not value or len(value) > _MAX_DIGITS + 1 or value.count(".") > 1 or value == ".":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _size(value: str, unit: str) -> int | None:
    number = _float(value)
    return None if number is None else int(number * _UNITS.get(unit.upper(), 1))


def parse_perf(text: str) -> PerfResult | None:
    """None when the text holds no eval_perf output at all."""
    lines = clean(text)
    result = PerfResult()
    found = False
    freq_key = None
    time_col = None
    rank_cols = None
    for line in lines:
        body = line.strip()
        m = re.match(r"(CPU|NPU|DDR) Current Frequency List:", body)
        if m:
            freq_key = m.group(1).lower()
            result.frequencies[freq_key] = []
            result.generation = "2.x"
            continue
        if freq_key and re.match(r"-\s*\d+$", body):
            if (mhz := _int(body.lstrip("- \t"))) is not None:
                result.frequencies[freq_key].append(mhz)
            continue
        freq_key = None
        if (m := re.match(r"Total Time\(us\):\s*(\d+)", body)) and _int(m.group(1)) is not None:
            result.total_time_us, result.generation, found = _int(m.group(1)), "2.x", True
        elif (m := re.match(r"FPS:\s*([\d.]+)", body)) and _float(m.group(1)) is not None:
            result.fps, found = _float(m.group(1)), True
        elif ((m := re.match(r"Total Operator Elapsed (Per Frame )?Time\(us\):\s*(\d+)", body))
              and _int(m.group(2)) is not None):
            result.operator_time_us, found = _int(m.group(2)), True
            result.generation = result.generation or ("2.x" if m.group(1) else "1.x")
        elif (m := re.match(r"Total Memory RW Amount\(MB\):\s*([\d.]+)", body)) and _float(m.group(1)) is not None:
            result.memory_rw_kb = _float(m.group(1)) * 1024
        elif ((m := re.match(r"Total Memory Read/Write Per Frame Size\(KB\):\s*([\d.]+)", body))
              and _float(m.group(1)) is not None):
            result.memory_rw_kb = _float(m.group(1))
        elif body.startswith("ID ") and "OpType" in body:
            # 1.x: ... OutputShape DDR Cycles NPU Cycles Total Cycles Time(us); 2.x: ... Cycles(DDR/NPU/Total) Time(us)
            time_col = 7 if "Cycles(DDR/NPU/Total)" in body else 9
        elif body.startswith("OpType") and ("Call Number" in body or "CallNumber" in body):
            rank_cols = "2.x" if "CallNumber" in body else "1.x"
        elif re.match(r"\d+\s+\S+\s+\S+\s+(CPU|NPU|GPU)\s", body):
            cols = body.split()
            if time_col is None and len(cols) > 7:     # an excerpt without its header: tell by the cycles column
                time_col = 7 if "/" in cols[6] else 9
            if (time_col is not None and len(cols) > time_col and _int(cols[time_col]) is not None
                    and _int(cols[0]) is not None):
                result.layers.append(Layer(_int(cols[0]), cols[1], cols[3], _int(cols[time_col])))
        elif rank_cols and re.match(r"\S+\s+\d+\s+\d+", body):
            cols = body.split()
            if rank_cols == "1.x" and len(cols) >= 6:
                op, calls, cpu, npu, total, ratio = cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
            elif rank_cols == "2.x" and len(cols) >= 7:
                op, calls, cpu, npu, total, ratio = cols[0], cols[1], cols[2], cols[4], cols[5], cols[6]
            else:
                continue
            numbers = [_int(calls), _int(cpu), _int(npu), _int(total)]
            share = _float(ratio.rstrip("%"))
            if None in numbers or share is None:
                continue
            if op == "Total":           # newer runtimes end the ranking with a sum row
                result.operator_time_us = result.operator_time_us or numbers[3]
                continue
            result.ranking.append(OperatorRank(op, *numbers, share))
        elif body.startswith("====") or body.startswith("----"):
            time_col = time_col if body.startswith("----") else None
            if body.startswith("===="):
                rank_cols = None
    if result.layers or result.ranking:
        found = True
        result.generation = result.generation or ("2.x" if time_col == 7 else "1.x")
    return result if found else None


_MEM_TEXT = {
    "weight": re.compile(r"^(?:Total )?Weight Memory\s*:\s*([\d.]+)\s*([KMG]i?B|B(?:yte)?s?)", re.I),
    "internal": re.compile(r"^(?:Total )?Internal (?:Tensor )?Memory\s*:\s*([\d.]+)\s*([KMG]i?B|B(?:yte)?s?)", re.I),
    "other": re.compile(r"^Other Memory\s*:\s*([\d.]+)\s*([KMG]i?B|B(?:yte)?s?)", re.I),
    "total": re.compile(r"^Total Memory\s*:\s*([\d.]+)\s*([KMG]i?B|B(?:yte)?s?)", re.I),
}
_MEM_KEYS = {"weight_memory": "weight", "internal_memory": "internal", "other_memory": "other",
             "total_memory": "total", "total_weight_allocation": "weight",
             "total_internal_allocation": "internal", "total_model_allocation": "total"}


def parse_memory(text: str) -> MemoryResult | None:
    lines = clean(text)
    result = MemoryResult()
    found = False
    for line in lines:
        body = line.strip()
        for key, pattern in _MEM_TEXT.items():
            m = pattern.match(body)
            if m and getattr(result, key) is None and _size(m.group(1), m.group(2)) is not None:
                setattr(result, key, _size(m.group(1), m.group(2)))
                found = True
        m = re.search(r"current model size is:\s*([\d.]+)\s*([KMG]i?B|Byte)", body)
        if m and _size(m.group(1), m.group(2)) is not None:
            result.model_size = _size(m.group(1), m.group(2))
    exact = {k: _int(v) for k, v in re.findall(r"'(\w+)'\s*:\s*(\d+)", "\n".join(lines))}
    exact = {k: v for k, v in exact.items() if v is not None}
    if any(k in _MEM_KEYS for k in exact):
        for key, value in exact.items():
            if key in _MEM_KEYS:
                setattr(result, _MEM_KEYS[key], value)
        result.exact = found = True
    return result if found else None
