"""How provision, rollback and server tasks look: the plan or outcome per board, then a recap."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .fleet import FleetRun
from .models_report import STATUS_STYLE, recap
from .provision import ProvisionPlan


def render_provision(console: Console, run: FleetRun, version: str | None, check: bool) -> None:
    title = f"{'Plan' if check else 'Provision'}: SDK bundle {version}" if version else "Result"
    table = Table(title=title, title_justify="left")
    for col in ("Board", "Status", "Steps", "Sent", "Notes / error"):
        table.add_column(col, overflow="fold")
    for r in run.results:
        status = Text("would change" if check and r.status == "changed" else r.status,
                      style=STATUS_STYLE.get(r.status, ""))
        if isinstance(r.data, ProvisionPlan):
            steps = "\n".join(s.what for s in r.data.steps) or "nothing to do"
            notes = "\n".join([*r.data.notes, *([r.error] if r.error else [])])
        else:
            steps = ", ".join(f"{k}={v}" for k, v in (r.data or {}).items())
            notes = r.error
        table.add_row(r.board, status, steps, f"{r.bytes_sent / 1e6:.2f} MB" if r.bytes_sent else "0", notes or "")
    console.print(table)
    recap(console, run)
