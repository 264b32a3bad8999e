"""How perf results look: board × model with time, FPS, memory and top operators; CSV; baselines.

Board names, model names, errors and diagnoses carry the toolkit's and the board's text: the table shows them
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
from .perf import PerfRun
from .report import cell


def _mib(n) -> str:
    return f"{n / 2 ** 20:.2f}" if n else "—"


def rows(runs: list[PerfRun]) -> list[dict]:
    out = []
    for r in runs:
        p, m = r.perf, r.memory
        out.append({"board": r.board, "model": r.model, "ok": r.ok,
                    "time_ms": round(p.time_us / 1000, 3) if p and p.time_us else None,
                    "fps": p.effective_fps if p else None,
                    "memory_total_mib": round(m.total / 2 ** 20, 2) if m and m.total else None,
                    "weight_mib": round(m.weight / 2 ** 20, 2) if m and m.weight else None,
                    "top_operators": ", ".join(f"{o.op_type} {o.ratio_pct:g}%" for o in (p.ranking[:3] if p else [])),
                    "error": r.error or None,
                    "diagnosis": "; ".join(f"{d.cause} → {d.fix}" for d in r.diagnoses) or None})
    return out


def regressions(current: list[dict], baseline_file: Path, threshold_pct: float) -> dict[tuple, str]:
    """(board, model) → why it regressed, compared with an earlier --json output."""
    before = {(b["board"], b["model"]): b for b in json.loads(baseline_file.read_text())["results"]}
    found = {}
    for row in current:
        old = before.get((row["board"], row["model"]))
        if not old or not row["time_ms"] or not old.get("time_ms"):
            continue
        change = 100.0 * (row["time_ms"] - old["time_ms"]) / old["time_ms"]
        if change > threshold_pct:
            found[(row["board"], row["model"])] = f"+{change:.1f}% ({old['time_ms']} → {row['time_ms']} ms)"
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
    table = Table(title="Connected-board performance", title_justify="left")
    for col in ("Board", "Model", "Time (ms)", "FPS", "Memory (MiB)", "Top operators", "Notes"):
        table.add_column(col, overflow="fold")
    for r in table_rows:
        note = Text()
        if (r["board"], r["model"]) in regressed:
            note.append(report.clean(f"REGRESSION {regressed[(r['board'], r['model'])]}"), style="bold red")
        if r["error"]:
            note.append(("\n" if note else "") + report.clean(r["error"], multiline=True), style="red")
        if r["diagnosis"]:
            note.append(("\n" if note else "") + report.clean(r["diagnosis"], multiline=True), style="yellow")
        table.add_row(cell(r["board"]), cell(r["model"]), cell(r["time_ms"] or "—"), cell(r["fps"] or "—"),
                      cell(r["memory_total_mib"] or "—"), cell(r["top_operators"] or ""), note)
    return table
