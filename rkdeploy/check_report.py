"""How `inv check` looks: one row per board, versions side by side, mismatches in colour."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .check import BoardCheck, board_status
from .fleet import FleetRun
from .policy import ERROR, Target

STATUS_STYLE = {"ok": "green", "mismatch": "red", "unreachable": "magenta", "failed": "red", "skipped": "yellow"}


def _cell(value, bad: bool) -> Text:
    return Text(str(value) if value else "—", style="bold red" if bad else "")


def render_check(console: Console, run: FleetRun, target: Target, toolkit_note: str) -> None:
    table = Table(title="Fleet versions", title_justify="left", expand=False)
    for col in ("Board", "SoC", "Arch", "Driver", "rknn_server", "librknnrt", "lite2", "Status", "Reason"):
        table.add_column(col, overflow="fold")
    for r in run.results:
        status = board_status(r)
        status_text = Text(status, style=STATUS_STYLE.get(status, ""))
        if not isinstance(r.data, BoardCheck):
            table.add_row(r.board, "", "", "", "", "", "", status_text, Text(r.error, style="magenta"))
            continue
        facts, findings = r.data.facts, r.data.findings
        bad = {f.component for f in findings if f.severity == ERROR}
        warn = {f.component for f in findings if f.severity != ERROR}
        server = facts.server_version
        server_cell = _cell(server, "server" in bad or "toolkit" in bad)
        if server and not facts.server_running:
            server_cell.append(" (stopped)", style="yellow")
        reasons = Text(", ").join(Text(f.short or f.component, style="red" if f.severity == ERROR else "yellow")
                                  for f in findings)
        driver = _cell(facts.npu_driver, False)
        if "driver" in warn:
            driver.stylize("yellow")
        table.add_row(r.board, facts.soc or "?", facts.arch, driver, server_cell,
                      _cell(facts.runtime_version, "runtime" in bad), _cell(facts.lite2, "lite2" in bad),
                      status_text, reasons or Text("all versions agree", style="green"))
    console.print(table)
    for r in run.results:
        if isinstance(r.data, BoardCheck) and r.data.findings:
            console.print(Text(f"{r.board}:", style="bold"))
            for f in r.data.findings:
                console.print(Text(f"  {'✗' if f.severity == ERROR else '!'} {f.message}",
                                   style="red" if f.severity == ERROR else "yellow"))
                if f.fix:
                    console.print(Text(f"    fix: {f.fix}", style="cyan"))
    target_text = f"target SDK {target.sdk}" if target.sdk else "no target SDK (pass --sdk or --bundle)"
    console.print(f"PC toolkit: {toolkit_note}; {target_text}")
    counts = {}
    for r in run.results:
        counts[board_status(r)] = counts.get(board_status(r), 0) + 1
    recap = Text("Recap: ")
    for status in ("ok", "mismatch", "unreachable", "failed", "skipped"):
        if counts.get(status) or status in ("ok", "mismatch", "unreachable"):
            recap.append(f"{status}={counts.get(status, 0)}  ", style=STATUS_STYLE[status] if counts.get(status) else "dim")
    console.print(recap)
    if run.retry_file:
        console.print(f"Boards to retry: --host @{run.retry_file}")
