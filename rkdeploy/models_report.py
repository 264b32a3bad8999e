"""How models look: `models.inspect`, `deploy`'s per-board outcome and `models.list`."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .fleet import FleetRun
from .rknn_model import RknnModel

STATUS_STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "magenta", "skipped": "dim"}


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def render_model(console: Console, model: RknnModel) -> None:
    table = Table(show_header=False, title=model.path, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in (("format version", model.format_version), ("target platform", ", ".join(model.target_platforms)),
                       ("built by toolkit", model.toolkit_version), ("name", model.name),
                       ("inputs / outputs", f"{model.inputs} / {model.outputs}"),
                       ("size", f"{model.size} bytes ({_mb(model.size)})"), ("sha256", model.sha256)):
        table.add_row(key, str(value))
    console.print(table)


def render_deploy(console: Console, run: FleetRun, model: RknnModel, name: str, check_only: bool) -> None:
    table = Table(title=f"{'Plan for' if check_only else 'Deployed'} {name} ({model.sha256[:12]}, {_mb(model.size)})",
                  title_justify="left")
    for col in ("Board", "Action", "Sent", "Status", "Detail"):
        table.add_column(col, overflow="fold")
    for r in run.results:
        plan = r.data
        action = plan.action if plan else "—"
        detail = r.error
        if plan and plan.forced:
            detail = Text("FORCED past: " + "; ".join(plan.problems), style="bold red")
        elif plan and plan.action == "none":
            detail = "already active"
        elif plan and plan.prune:
            detail = f"pruned {', '.join(plan.prune)}"
        status = "planned" if check_only and r.status == "changed" else r.status
        table.add_row(r.board, action, _mb(r.bytes_sent) if r.bytes_sent else "0",
                      Text(status, style=STATUS_STYLE.get(r.status, "")), detail or "")
    console.print(table)
    recap(console, run)


def render_model_list(console: Console, run: FleetRun) -> None:
    table = Table(title="Deployed models", title_justify="left")
    for col in ("Board", "Model", "Active", "Size", "Toolkit", "Platform", "Deployed", "Kept"):
        table.add_column(col, overflow="fold")
    for r in run.results:
        if r.status != "ok":
            table.add_row(r.board, Text(r.status, style=STATUS_STYLE.get(r.status, "")), r.error, "", "", "", "", "")
            continue
        if not r.data:
            table.add_row(r.board, Text("none", style="dim"), "", "", "", "", "", "")
        for m in r.data:
            meta = m.active_meta
            table.add_row(r.board, m.name, m.active or "—", _mb(meta.get("size", 0)) if meta else "",
                          meta.get("toolkit", ""), ", ".join(meta.get("platforms", [])),
                          meta.get("deployed_at", ""), str(len(m.versions)))
    console.print(table)


def recap(console: Console, run: FleetRun) -> None:
    text = Text("Recap: ")
    for status in ("ok", "changed", "failed", "unreachable", "skipped"):
        n = run.count(status)
        text.append(f"{status}={n}  ", style=STATUS_STYLE[status] if n else "dim")
    console.print(text)
    if run.retry_file:
        console.print(f"Boards to retry: --host @{run.retry_file}")
