"""How `inv check` looks: one row per board, versions side by side, mismatches in colour.

Every board value goes through `report.cell` (cleaned `Text`, never markup); the table is drawn by
`report.fleet_report`, so a render failure gives plain lines and the recap still follows."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import report
from .check import BoardCheck, board_status
from .fleet import FleetRun
from .policy import ERROR, Target
from .report import cell

STATUS_STYLE = report.STATUS_STYLE


def _cell(value, bad: bool) -> Text:
    return cell(value if value else "—", "bold red" if bad else "")


def _table(run: FleetRun) -> Table:
    table = Table(title="Fleet versions", title_justify="left", expand=False)
    for col in ("Board", "SoC", "Arch", "Driver", "rknn_server", "librknnrt", "lite2", "Status", "Reason"):
        table.add_column(col, overflow="fold")
    for r in run.results:
        status = board_status(r)
        status_text = report.status_cell(status)
        if not isinstance(r.data, BoardCheck):
            table.add_row(cell(r.board), "", "", "", "", "", "", status_text, cell(r.error, "magenta"))
            continue
        facts, findings = r.data.facts, r.data.findings
        bad = {f.component for f in findings if f.severity == ERROR}
        warn = {f.component for f in findings if f.severity != ERROR}
        server = facts.server_version
        server_cell = _cell(server, "server" in bad or "toolkit" in bad)
        if server and not facts.server_running:
            server_cell.append(" (stopped)", style="yellow")
        reasons = Text(", ").join(cell(f.short or f.component, "red" if f.severity == ERROR else "yellow")
                                  for f in findings)
        driver = _cell(facts.npu_driver, False)
        if "driver" in warn:
            driver.stylize("yellow")
        table.add_row(cell(r.board), cell(facts.soc or "?"), cell(facts.arch), driver, server_cell,
                      _cell(facts.runtime_version, "runtime" in bad), _cell(facts.lite2, "lite2" in bad),
                      status_text, reasons or Text("all versions agree", style="green"))
    return table


def render_check(console: Console, run: FleetRun, target: Target, toolkit_note: str) -> None:
    def parts():
        yield _table(run)
        for r in run.results:
            if isinstance(r.data, BoardCheck) and r.data.findings:
                yield cell(f"{r.board}:", "bold")
                for f in r.data.findings:
                    yield cell(f"  {'✗' if f.severity == ERROR else '!'} {f.message}",
                               "red" if f.severity == ERROR else "yellow")
                    if f.fix:
                        yield cell(f"    fix: {f.fix}", "cyan")
        yield toolkit_line()

    def toolkit_line() -> Text:
        target_text = f"target SDK {target.sdk}" if target.sdk else "no target SDK (pass --sdk or --bundle)"
        return cell(f"PC toolkit: {toolkit_note}; {target_text}")

    def fallback():
        for r in run.results:
            yield (r.board, board_status(r), r.error)
            if isinstance(r.data, BoardCheck):
                for f in r.data.findings:
                    yield ("", f.severity, f.message, f"fix: {f.fix}" if f.fix else "")
        yield (toolkit_line().plain,)

    report.fleet_report(console, run, parts, status_of=board_status, always=report.CHECK_RECAP, fallback=fallback,
                        what="the check table")
