"""How provision, rollback and server tasks look: the plan or outcome per board, then a recap and the retry line.

Board values (server status fields, notes, errors) and bundle fields are shown through `report.cell`."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from . import report
from .fleet import FleetRun
from .provision import ProvisionPlan
from .report import cell

STATUS_STYLE = report.STATUS_STYLE


def _steps_and_notes(r) -> tuple[str, str]:
    if isinstance(r.data, ProvisionPlan):
        steps = "\n".join(report.clean(s.what) for s in r.data.steps) or "nothing to do"
        notes = "\n".join(report.clean(n, multiline=True) for n in [*r.data.notes, *([r.error] if r.error else [])])
        return steps, notes
    data = r.data if isinstance(r.data, dict) else ({"result": r.data} if r.data is not None else {})
    return ", ".join(f"{report.clean(k)}={report.clean(v)}" for k, v in data.items()), report.clean(r.error, multiline=True)


def render_provision(console: Console, run: FleetRun, version: str | None, check: bool) -> None:
    def parts():
        title = f"{'Plan' if check else 'Provision'}: SDK bundle {version}" if version else "Result"
        table = Table(title=cell(title, multiline=False), title_justify="left")
        for col in ("Board", "Status", "Steps", "Sent", "Notes / error"):
            table.add_column(col, overflow="fold")
        for r in run.results:
            status = report.status_cell(r.status, "would change" if check and r.status == "changed" else None)
            steps, notes = _steps_and_notes(r)
            table.add_row(cell(r.board), status, cell(steps), f"{r.bytes_sent / 1e6:.2f} MB" if r.bytes_sent else "0",
                          cell(notes))
        yield table

    def fallback():
        for r in run.results:
            steps, notes = _steps_and_notes(r)
            yield (r.board, r.status, steps, notes)

    report.fleet_report(console, run, parts, fallback=fallback, what="the provision table")
