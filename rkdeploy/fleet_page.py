"""`inv report`: the fleet on one self-contained HTML page, from the JSON documents the tasks print.

Input: the documents of `check`, `models.list` and `perf` (exactly what `--json` prints; `Documents`), an optional
perf baseline and the saved runs of `state_dir/history` (history.py). Output: one HTML file with its styles and
its charts (inline SVG from charts.py) inside: nothing is fetched when it is opened, and nothing runs (there is
no script at all; a Content-Security-Policy forbids any).

Sections: summary, version matrix (findings with reason and fix), deployed models, performance (charts per
model, regressions against a baseline marked), history (mismatches and latency over the saved runs).

Every value from a document is untrusted (boards, models, bundles, the toolkit wrote it, and a saved document
may have been edited): `text()` passes it through `report.clean` and `html.escape`, and values are read with
`_get`, which gives "" for anything missing or of the wrong type. A chart that cannot be drawn is replaced by
one line saying why; the tables are still there.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, charts, history, report

TASKS = ("check", "models.list", "perf")
COLUMNS = (  # version matrix: header, how to read it from a board's facts, finding components it shows
    ("SoC", ("soc",), ()), ("Arch", ("arch",), ("arch",)),
    ("rknn_server", ("server", "version", "release"), ("server",)),
    ("librknnrt", ("runtime", "version", "release"), ("runtime",)),
    ("lite2", ("lite2", "release"), ("lite2",)), ("NPU driver", ("npu_driver", "release"), ("driver", "npu")),
)


# --- reading documents --------------------------------------------------------------------------------------

@dataclass
class Saved:
    path: Path | None
    at: dt.datetime
    doc: dict


@dataclass
class Documents:
    """What a page is built from: the current document per task, the baseline, and the saved runs."""
    current: dict[str, Saved] = field(default_factory=dict)
    history: dict[str, list[Saved]] = field(default_factory=dict)
    baseline: Path | None = None
    origin: str = ""
    notes: list[str] = field(default_factory=list)

    def doc(self, task: str) -> dict | None:
        saved = self.current.get(task)
        return saved.doc if saved else None


def read_dir(directory: Path) -> list[Saved]:
    """Every *.json in `directory` that is a task's document (a JSON object with a `task` key), oldest first."""
    found = []
    for path in sorted(Path(directory).glob("*.json")):
        doc = history.load(path)
        if doc is not None:
            found.append(Saved(path, history.saved_at(path), doc))
    return sorted(found, key=lambda s: (s.at, str(s.path)))


def documents(*, from_dir: Path | None = None, fresh: dict[str, dict] | None = None, perf_file: Path | None = None,
              history_dir: Path | None = None, baseline: Path | None = None,
              now: dt.datetime | None = None) -> Documents:
    """The documents of a page: `fresh` ones (this run's check and models.list), else the newest of each task in
    `from_dir`; perf from `perf_file`, else `from_dir`, else the newest saved perf run. History: the saved runs
    of `history_dir` and of `from_dir`, each file once."""
    now = now or dt.datetime.now(dt.timezone.utc)
    docs = Documents(baseline=baseline)
    saved_runs = read_dir(history_dir) if history_dir and Path(history_dir).is_dir() else []
    given = read_dir(from_dir) if from_dir else []
    for task in TASKS:
        mine = [s for s in given if s.doc.get("task") == task]
        if mine:
            docs.current[task] = mine[-1]
    for task, doc in (fresh or {}).items():
        docs.current[task] = Saved(None, now, doc)
    if perf_file:
        doc = history.load(perf_file)
        if doc is not None and doc.get("task") == "perf":
            docs.current["perf"] = Saved(Path(perf_file), history.saved_at(Path(perf_file)), doc)
        else:
            docs.notes.append(f"{perf_file} is not an `inv perf --json` document: not shown")
    if "perf" not in docs.current:
        perf_runs = [s for s in saved_runs if s.doc.get("task") == "perf"]
        if perf_runs:
            docs.current["perf"] = perf_runs[-1]
    seen = set()
    for s in saved_runs + given:
        key = s.path.resolve() if s.path else id(s)
        if key in seen:
            continue
        seen.add(key)
        docs.history.setdefault(s.doc["task"], []).append(s)
    for runs in docs.history.values():
        runs.sort(key=lambda s: s.at)
    docs.origin = f"saved documents in {from_dir}" if from_dir else "a fresh run of check and models.list"
    return docs


# --- safe values --------------------------------------------------------------------------------------------

def text(value: Any, *, multiline: bool = False) -> str:
    """Untrusted text for HTML: control characters as `?` (report.clean), then escaped (quotes too)."""
    return html.escape(report.clean(value, multiline=multiline), quote=True)


def _get(obj: Any, *keys: str, default: Any = "") -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return default if obj is None else obj


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def age(then: dt.datetime | None, now: dt.datetime) -> str:
    if then is None:
        return "—"
    seconds = (now - then).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def _chart(make, *args, **kwargs) -> str:
    """A chart, or one line saying why it could not be drawn (the tables beside it are still there)."""
    try:
        return f'<figure class="chart">{make(*args, **kwargs)}</figure>'
    except Exception as e:  # noqa: BLE001 - a chart must never lose the page
        return f'<p class="note bad">chart could not be drawn ({text(type(e).__name__)}: {text(e)})</p>'


# --- sections -----------------------------------------------------------------------------------------------

def _finding_class(findings: list, components: tuple) -> str:
    severities = {_get(f, "severity") for f in findings if _get(f, "component") in components}
    return "bad" if "error" in severities else "warn" if "warning" in severities else ""


def version_matrix(check: dict | None) -> str:
    if not check:
        return ('<p class="note">No check document: run a fresh report (<code>inv report --all</code>) or save '
                '<code>inv check --all --json &gt; check.json</code> for <code>--from</code>.</p>')
    target = _get(check, "target", "sdk") or "none (pass --sdk or --bundle to check)"
    toolkit = _get(check, "toolkit", "version")
    toolkit_note = _get(check, "toolkit", "note")
    head = "".join(f"<th>{h}</th>" for h, _, _ in COLUMNS)
    rows = []
    for board in _list(_get(check, "boards", default=[])):
        name, status = _get(board, "board"), _get(board, "status")
        facts, findings = _get(board, "facts", default={}), _list(_get(board, "findings", default=[]))
        if not isinstance(facts, dict) or not facts:
            rows.append(f'<tr class="status-{text(status)}"><th scope="row">{text(name)}</th>'
                        f'<td colspan="{len(COLUMNS) + 1}"></td><td class="status">{text(status)}</td>'
                        f'<td class="reason">{text(_get(board, "error"), multiline=True)}</td></tr>')
            continue
        cells = []
        for _, path, components in COLUMNS:
            value = _get(facts, *path)
            raw = _get(facts, *path[:-1], "raw") if len(path) > 1 else ""
            cls = _finding_class(findings, components)
            if path[0] == "server" and value and facts.get("server_running") is False:
                value = f"{report.clean(value)} (stopped)"
            title = f' title="{text(raw)}"' if raw else ""
            cells.append(f'<td class="{cls}"{title}>{text(value) or "—"}</td>')
        cells.append(f'<td class="{_finding_class(findings, ("toolkit",))}">{text(toolkit) or "—"}</td>')
        reasons = []
        for f in findings:
            severity = "bad" if _get(f, "severity") == "error" else "warn"
            fix = _get(f, "fix")
            reasons.append(f'<li class="{severity}"><span class="short">{text(_get(f, "short") or _get(f, "component"))}'
                           f'</span>: {text(_get(f, "message"), multiline=True)}'
                           + (f'<br><span class="fix">fix: <code>{text(fix)}</code></span>' if fix else "") + "</li>")
        reason = f'<ul>{"".join(reasons)}</ul>' if reasons else '<span class="good">all versions agree</span>'
        rows.append(f'<tr class="status-{text(status)}"><th scope="row">{text(name)}</th>{"".join(cells)}'
                    f'<td class="status">{text(status)}</td><td class="reason">{reason}</td></tr>')
    summary = _get(check, "summary", default={})
    counts = [(s, int(_num(_get(summary, s, default=0)) or 0), c) for s, c in
              (("ok", charts.GOOD), ("mismatch", charts.BAD), ("unreachable", "#a855f7"), ("failed", charts.BAD),
               ("skipped", charts.WARN))]
    chart = _chart(charts.bars_by_status, "Boards per status", [c for c in counts if c[1] or c[0] == "ok"])
    note = f" ({text(toolkit_note)})" if toolkit_note else ""
    return (f'<p>Target SDK: <b>{text(target)}</b>; PC rknn-toolkit2: <b>{text(toolkit) or "unknown"}</b>{note}. '
            'Cells in red break the version policy (server = runtime = toolkit = target SDK), amber ones are '
            'warnings; each board\'s findings give the reason and the command that fixes it.</p>'
            f'<div class="scroll"><table class="matrix"><thead><tr><th>Board</th>{head}<th>PC toolkit</th>'
            f'<th>Status</th><th>Findings: reason and fix</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
            + chart)


def deployed_models(models: dict | None, now: dt.datetime) -> str:
    if not models:
        return ('<p class="note">No models.list document: run a fresh report or save <code>inv models.list --all '
                '--json &gt; models.json</code> for <code>--from</code>.</p>')
    rows = []
    for board in _list(_get(models, "boards", default=[])):
        name, status = _get(board, "board"), _get(board, "status")
        entries = _list(_get(board, "models", default=[]))
        if status != "ok":
            rows.append(f'<tr class="status-{text(status)}"><th scope="row">{text(name)}</th><td colspan="3">'
                        f'<span class="status">{text(status)}</span></td><td class="reason">'
                        f'{text(_get(board, "error"), multiline=True)}</td></tr>')
            continue
        if not entries:
            rows.append(f'<tr><th scope="row">{text(name)}</th><td colspan="4" class="dim">no models</td></tr>')
        for m in entries:
            active = report.clean(_get(m, "active"))
            versions = [v for v in _list(_get(m, "versions", default=[])) if isinstance(v, dict)]
            meta = next((v for v in versions if str(_get(v, "sha256"))[:12] == active), {})
            kept = []
            for v in versions:
                sha12 = report.clean(str(_get(v, "sha256"))[:12]) or "?"
                cls = ' class="active"' if sha12 == active else ""
                kept.append(f'<li{cls} title="{text(_get(v, "deployed_at"))}">{text(sha12)}</li>')
            deployed = _get(meta, "deployed_at")
            rows.append(f'<tr><th scope="row">{text(name)}</th><td>{text(_get(m, "name"))}</td>'
                        f'<td><code>{text(active) or "—"}</code></td>'
                        f'<td title="{text(deployed)}">{text(age(_when(deployed), now))}</td>'
                        f'<td><ol class="kept">{"".join(kept)}</ol></td></tr>')
    return ('<div class="scroll"><table><thead><tr><th>Board</th><th>Model</th><th>Active (sha12)</th><th>Age</th>'
            f'<th>Kept versions (oldest first, active in bold)</th></tr></thead><tbody>{"".join(rows)}</tbody>'
            '</table></div>')


def perf_rows(perf: dict | None) -> list[dict]:
    """perf's `results`, normalised: text fields as cleaned strings, numbers as floats or None."""
    rows = []
    for r in _list(_get(perf, "results", default=[])):
        if not isinstance(r, dict):
            continue
        row = {k: report.clean(_get(r, k)) for k in ("board", "model", "core_mask", "error", "diagnosis")}
        row.update({k: _num(r.get(k)) for k in ("time_ms", "fps", "memory_total_mib", "p50_ms", "p90_ms",
                                                  "p99_ms", "npu_ms", "threads", "runs")})
        row["ok"] = r.get("ok") is True
        rows.append(row)
    return rows


def row_key(row: dict) -> tuple:
    """What a row is matched on: perf_report.row_key where the perf report has it (per core mask and threads
    for on-board rows), else (board, model)."""
    from . import perf_report
    key = getattr(perf_report, "row_key", None)
    if key is not None:
        try:
            return key(row)
        except (KeyError, TypeError):
            pass
    if row.get("core_mask"):
        return row["board"], row["model"], row["core_mask"], row.get("threads")
    return row["board"], row["model"]


def series_name(row: dict) -> str:
    name = f"{row['board']} · {row['model']}"
    if row.get("core_mask"):
        name += f" · {row['core_mask']}"
    if row.get("threads"):
        name += f" · {row['threads']:g} thr"
    return name


def compare(rows: list[dict], perf: dict | None, baseline: Path | None, threshold: float) -> tuple[dict, dict, str]:
    """(regressions: key → why, baseline times: key → ms, note). With --baseline: `perf_report.regressions`,
    the comparison `inv perf --baseline` makes; without: the regressions the perf document itself recorded."""
    from .perf_report import regressions
    if baseline:
        try:
            found = regressions(rows, Path(baseline), float(threshold))
            before = {}
            for b in _list(_get(json.loads(Path(baseline).read_text()), "results", default=[])):
                if isinstance(b, dict) and _num(b.get("time_ms")):
                    norm = {k: report.clean(_get(b, k)) for k in ("board", "model", "core_mask")}
                    norm["threads"] = _num(b.get("threads"))
                    before[row_key(norm)] = _num(b.get("time_ms"))
            return found, before, f"against {baseline} (slower by more than {threshold:g} %)"
        except Exception as e:  # noqa: BLE001 - an unreadable baseline is said, the page is still made
            return {}, {}, f"--baseline {baseline} not compared: {type(e).__name__}: {e}"
    recorded = {}
    for r in _list(_get(perf, "regressions", default=[])):
        if isinstance(r, dict):
            recorded[(report.clean(_get(r, "board")), report.clean(_get(r, "model")))] = report.clean(_get(r, "why"))
    return recorded, {}, "as recorded by the perf run (its --baseline)" if recorded else ""


def _regression(regressed: dict, row: dict) -> str:
    found = regressed.get(row_key(row))
    if found is None and not row.get("core_mask"):
        found = regressed.get((row["board"], row["model"]))
    return found or ""


def performance(perf: dict | None, baseline: Path | None, threshold: float) -> tuple[str, int]:
    if not perf:
        return ('<p class="note">No perf results: <code>inv perf</code> saves every run under the state directory '
                '(history/perf-*.json), or pass <code>--perf FILE</code> / a perf document in '
                '<code>--from DIR</code>.</p>'), 0
    rows = perf_rows(perf)
    regressed, before, how = compare(rows, perf, baseline, threshold)
    marked = 0
    by_model: dict[str, list[dict]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    figures = []
    for model, model_rows in by_model.items():
        bars = []
        for row in sorted(model_rows, key=lambda r: (r["board"], r["core_mask"], r["threads"] or 0)):
            if row["time_ms"] is None:
                continue
            label = row["board"] + (f" · {row['core_mask']}" if row["core_mask"] else "") \
                + (f" · {row['threads']:g} thr" if row["threads"] else "")
            bars.append({"label": label, "value": row["time_ms"], "p90": row["p90_ms"], "p99": row["p99_ms"],
                         "baseline": before.get(row_key(row)), "regression": _regression(regressed, row)})
        if bars:
            figures.append(_chart(charts.latency_bars, f"{model}: latency per board", bars))
    table = []
    for row in rows:
        why = _regression(regressed, row)
        marked += bool(why)
        note = (f'<span class="bad">REGRESSION {text(why)}</span>' if why else "") \
            + (f'<div class="bad">{text(row["error"], multiline=True)}</div>' if row["error"] else "") \
            + (f'<div class="warn">{text(row["diagnosis"], multiline=True)}</div>' if row["diagnosis"] else "")
        fmt = lambda v: "—" if v is None else f"{v:g}"  # noqa: E731
        table.append(f'<tr class="{"regression" if why else ""}"><th scope="row">{text(row["board"])}</th>'
                     f'<td>{text(row["model"])}</td><td>{text(row["core_mask"]) or "—"}</td><td>{fmt(row["threads"])}</td>'
                     f'<td class="num">{fmt(row["time_ms"])}</td><td class="num">{fmt(row["p50_ms"])}</td>'
                     f'<td class="num">{fmt(row["p90_ms"])}</td><td class="num">{fmt(row["p99_ms"])}</td>'
                     f'<td class="num">{fmt(row["fps"])}</td><td class="num">{fmt(row["memory_total_mib"])}</td>'
                     f'<td class="notes">{note}</td></tr>')
    toolkit = _get(perf, "toolkit")
    intro = (f'<p>Toolkit {text(toolkit) or "unknown"}. Regressions {text(how)}: '
             f'<b class="{"bad" if marked else "good"}">{marked}</b>.</p>' if how else
             f'<p>Toolkit {text(toolkit) or "unknown"}. No baseline (pass <code>--baseline perf.json</code> to mark '
             'regressions).</p>')
    return (intro + "".join(figures)
            + '<div class="scroll"><table class="perf"><thead><tr><th>Board</th><th>Model</th><th>Core mask</th>'
              '<th>Threads</th><th>Time (ms)</th><th>p50</th><th>p90</th><th>p99</th><th>FPS</th><th>Memory (MiB)</th>'
              f'<th>Notes</th></tr></thead><tbody>{"".join(table)}</tbody></table></div>'), marked


def history_section(docs: Documents) -> str:
    checks = docs.history.get("check", [])
    perfs = docs.history.get("perf", [])
    parts = [f'<p>{len(checks)} saved check run(s), {len(perfs)} saved perf run(s).</p>']
    if len(checks) >= 2:
        series: dict[str, list] = {}
        for s in checks:
            summary = _get(s.doc, "summary", default={}) or _get(s.doc, "recap", default={})
            for status in ("mismatch", "unreachable", "failed", "ok"):
                n = _num(_get(summary, status, default=None))
                if n is not None:
                    series.setdefault(status, []).append((s.at, n))
        colours = {"mismatch": charts.BAD, "unreachable": "#a855f7", "failed": charts.WARN, "ok": charts.GOOD}
        parts.append(_chart(charts.lines_over_time, "Boards per status over the saved check runs", series,
                            "boards", colours=colours, integer=True))
    else:
        parts.append('<p class="note">The mismatch history needs at least two saved check runs.</p>')
    if len(perfs) >= 2:
        per_model: dict[str, dict[str, list]] = {}
        for s in perfs:
            for row in perf_rows(s.doc):
                if row["time_ms"] is not None:
                    per_model.setdefault(row["model"], {}).setdefault(series_name(row), []).append(
                        (s.at, row["time_ms"]))
        for model, series in per_model.items():
            parts.append(_chart(charts.lines_over_time, f"{model}: latency over the saved perf runs", series, "ms"))
    else:
        parts.append('<p class="note">The latency history needs at least two saved perf runs.</p>')
    return "".join(parts)


# --- the page -----------------------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --bad-bg: #ffebe9; --bad: #b42318; --warn-bg: #fff8c5; --warn: #8a5a00; --good: #1a7f37; --head: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --bad-bg: #3c1618; --bad: #ff7b72;
    --warn-bg: #3a2d0b; --warn: #e3b341; --good: #3fb950; --head: #161b22; } }
body { background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  margin: 0 auto; padding: 1.5rem; max-width: 1200px; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid var(--line);
  padding-bottom: .2rem; margin-top: 2rem; }
.meta, .dim, .note { color: var(--muted); }
nav a { color: inherit; margin-right: 1rem; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .9rem; min-width: 7rem; }
.card b { display: block; font-size: 1.4rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top;
  white-space: nowrap; }
td.reason, td.notes { white-space: pre-wrap; overflow-wrap: anywhere; min-width: 18rem; }
thead th { background: var(--head); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad, tr.regression td, tr.regression th { background: var(--bad-bg); }
td.bad { color: var(--bad); font-weight: 600; } td.warn { background: var(--warn-bg); color: var(--warn); }
tr.status-mismatch > th, tr.status-unreachable > th, tr.status-failed > th { border-left: 4px solid var(--bad); }
.bad { color: var(--bad); } .warn { color: var(--warn); } .good { color: var(--good); }
td.reason ul { margin: 0; padding-left: 1.1rem; } .fix code { white-space: pre-wrap; }
ol.kept { margin: 0; padding-left: 1.3rem; } ol.kept li.active { font-weight: 700; }
code { font: 12px ui-monospace, monospace; }
figure.chart { margin: .5rem 0 1rem; } svg.chart { max-width: 100%; height: auto; color: var(--fg); }
footer { margin-top: 2rem; color: var(--muted); font-size: 12px; }
@media print {
  :root { --bg: #fff; --fg: #000; --muted: #444; --line: #999; --bad-bg: #fde2e1; --warn-bg: #fff3bf; --head: #eee; }
  body { max-width: none; padding: 0; font-size: 11px; } nav { display: none; }
  section, figure.chart, tr { break-inside: avoid; } h2 { break-after: avoid; }
  .scroll { overflow: visible; } a { color: inherit; text-decoration: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def build(docs: Documents, *, threshold: float = 10.0, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    check, models, perf = docs.doc("check"), docs.doc("models.list"), docs.doc("perf")
    boards = []
    for doc in (check, models, perf):
        for b in _list(_get(doc, "boards", default=[])) + _list(_get(doc, "results", default=[])):
            name = report.clean(_get(b, "board"))
            if name and name not in boards:
                boards.append(name)
    summary = _get(check, "summary", default={}) if check else {}
    perf_html, regressed = performance(perf, docs.baseline, threshold)
    cards = [("boards", len(boards), ""), ("ok", _get(summary, "ok", default="—"), "good"),
             ("mismatch", _get(summary, "mismatch", default="—"), "bad"),
             ("unreachable", _get(summary, "unreachable", default="—"), "bad"),
             ("regressions", regressed if perf else "—", "bad")]
    card_html = "".join(f'<div class="card"><span>{name}</span><b class="{cls if value not in (0, "—") else ""}">'
                        f'{text(value)}</b></div>' for name, value, cls in cards)
    sources = "".join(f"<li>{text(task)}: {text(s.path) if s.path else 'this run'} "
                      f"({text(s.at.strftime('%Y-%m-%d %H:%M:%S UTC'))})</li>" for task, s in docs.current.items())
    notes = "".join(f'<p class="note warn">{text(n)}</p>' for n in docs.notes)
    sections = [("versions", "Version matrix", version_matrix(check)),
                ("models", "Deployed models", deployed_models(models, now)),
                ("performance", "Performance", perf_html),
                ("history", "History", history_section(docs))]
    body = "".join(f'<section id="{sid}"><h2>{title}</h2>{content}</section>' for sid, title, content in sections)
    nav = "".join(f'<a href="#{sid}">{title}</a>' for sid, title, _ in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>rkdeploy fleet report</title><style>{CSS}</style></head>
<body><header><h1>rkdeploy fleet report</h1>
<p class="meta">Made {text(now.strftime('%Y-%m-%d %H:%M:%S UTC'))} from {text(docs.origin)} by rkdeploy {text(__version__)}.</p>
<nav>{nav}</nav></header>
<div class="cards">{card_html}</div>{notes}
{body}
<footer><p>Sources:</p><ul>{sources}</ul></footer>
</body></html>
"""


def write(path: Path, page: str) -> Path:
    """Write the page (a temporary file beside it, then renamed: a reader never sees half a page)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
