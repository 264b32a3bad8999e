"""How perf results look: board × model (× core mask × threads for `--on-board`) with time, FPS, memory, top
operators and latency percentiles; CSV; baselines.

Columns of both paths: `time_ms` is the toolkit's `Total Time` (PC-driven) or the median wall-clock latency of
one `inference()` on the board (`--on-board`); `fps` is the toolkit's FPS or the on-board throughput
(inferences/s across all threads). On-board rows add `core_mask`, `threads`, `p50_ms`/`p90_ms`/`p99_ms`
(latency percentiles), `npu_ms` (median of the runtime's own per-run time, rknn_query PERF_RUN) and `runs`;
PC-driven rows have None there.

Board names, model names, errors and diagnoses carry the toolkit's and the board's text: the tables show them
through `report.cell`, CSV through `report.clean`, and a table that cannot be drawn falls back to plain lines."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import report
from .report import cell


def _mib(n) -> str:
    return f"{n / 2 ** 20:.2f}" if n else "—"


ONBOARD_KEYS = ("core_mask", "threads", "p50_ms", "p90_ms", "p99_ms", "npu_ms", "runs")


def row_key(row: dict) -> tuple:
    """(board, model), plus core mask and threads for on-board rows: what a baseline row is matched on."""
    if row.get("core_mask"):
        return row["board"], row["model"], row["core_mask"], row.get("threads")
    return row["board"], row["model"]


def _onboard_row(r) -> dict:
    lat, npu = r.latency_ms or {}, r.npu_time_ms or {}
    return {"board": r.board, "model": r.model, "ok": r.ok, "time_ms": lat.get("p50"), "fps": r.throughput,
            "memory_total_mib": None, "weight_mib": None, "top_operators": "", "error": r.error or None,
            "diagnosis": "; ".join(f"{d.cause} → {d.fix}" for d in r.diagnoses) or None,
            "core_mask": r.core_mask or None, "threads": r.threads or None, "p50_ms": lat.get("p50"),
            "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"), "npu_ms": npu.get("p50"), "runs": r.runs or None}


def rows(runs: list) -> list[dict]:
    out = []
    for r in runs:
        if hasattr(r, "core_mask"):
            out.append(_onboard_row(r))
            continue
        p, m = r.perf, r.memory
        out.append({"board": r.board, "model": r.model, "ok": r.ok,
                    "time_ms": round(p.time_us / 1000, 3) if p and p.time_us else None,
                    "fps": p.effective_fps if p else None,
                    "memory_total_mib": round(m.total / 2 ** 20, 2) if m and m.total else None,
                    "weight_mib": round(m.weight / 2 ** 20, 2) if m and m.weight else None,
                    "top_operators": ", ".join(f"{o.op_type} {o.ratio_pct:g}%" for o in (p.ranking[:3] if p else [])),
                    "error": r.error or None,
                    "diagnosis": "; ".join(f"{d.cause} → {d.fix}" for d in r.diagnoses) or None,
                    **{k: None for k in ONBOARD_KEYS}})
    return out


def regressions(current: list[dict], baseline_file: Path, threshold_pct: float) -> dict[tuple, str]:
    """row_key → why it regressed, compared with an earlier --json output (on-board rows: per core mask and
    thread count)."""
    before = {row_key(b): b for b in json.loads(baseline_file.read_text())["results"]}
    found = {}
    for row in current:
        old = before.get(row_key(row))
        if not old or not row["time_ms"] or not old.get("time_ms"):
            continue
        change = 100.0 * (row["time_ms"] - old["time_ms"]) / old["time_ms"]
        if change > threshold_pct:
            found[row_key(row)] = f"+{change:.1f}% ({old['time_ms']} → {row['time_ms']} ms)"
    return found


def to_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for row in table for k in row)) or ["board"]   # rows of boards without a run
    writer = csv.DictWriter(buf, fieldnames=fields)                                # may have fewer keys
    writer.writeheader()
    writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in table)
    return buf.getvalue()


def _csv_cell(value):
    """Board-derived text, cleaned; a cell a spreadsheet would take for a formula gets a leading quote."""
    if not isinstance(value, str):
        return value
    value = report.clean(value, multiline=True)
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def render_perf(console: Console, table_rows: list[dict], regressed: dict[tuple, str] | None = None) -> None:
    """The table (all or nothing: `report.draw`); if it cannot be drawn, one plain line per board and model."""
    report.draw(console, lambda: [_perf_table(table_rows, regressed)],
                lambda: [(r.get("board"), r.get("model"), "ok" if r.get("ok") else "failed", r.get("error"))
                         for r in table_rows], "the perf table")


def _perf_table(table_rows: list[dict], regressed: dict[tuple, str] | None = None) -> Table:
    regressed = regressed or {}
    if any(r.get("core_mask") for r in table_rows):
        return _onboard_table(table_rows, regressed)
    table = Table(title="Connected-board performance", title_justify="left")
    for col in ("Board", "Model", "Time (ms)", "FPS", "Memory (MiB)", "Top operators", "Notes"):
        table.add_column(col, overflow="fold")
    for r in table_rows:
        table.add_row(cell(r["board"]), cell(r["model"]), cell(r["time_ms"] or "—"), cell(r["fps"] or "—"),
                      cell(r["memory_total_mib"] or "—"), cell(r["top_operators"] or ""), _notes(r, regressed))
    return table


def _notes(r: dict, regressed: dict) -> Text:
    note = Text()
    if row_key(r) in regressed:
        note.append(report.clean(f"REGRESSION {regressed[row_key(r)]}"), style="bold red")
    if r["error"]:
        note.append(("\n" if note else "") + report.clean(r["error"], multiline=True), style="red")
    if r["diagnosis"]:
        note.append(("\n" if note else "") + report.clean(r["diagnosis"], multiline=True), style="yellow")
    return note


def _onboard_table(table_rows: list[dict], regressed: dict) -> Table:
    table = Table(title="On-board performance (rknn-toolkit-lite2 on each board)", title_justify="left")
    for col in ("Board", "Model", "Cores", "Threads", "p50 (ms)", "p90 (ms)", "p99 (ms)", "NPU (ms)", "Inf/s",
                "Runs", "Notes"):
        table.add_column(col, overflow="fold")
    for r in table_rows:
        value = lambda k: cell("—" if r.get(k) is None else r[k])     # noqa: E731
        table.add_row(value("board"), value("model"), value("core_mask"), value("threads"), value("p50_ms"),
                      value("p90_ms"), value("p99_ms"), value("npu_ms"), value("fps"), value("runs"),
                      _notes(r, regressed))
    return table
