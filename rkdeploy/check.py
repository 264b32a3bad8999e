"""`inv check`: probe every selected board once and judge its versions against the target."""
from __future__ import annotations

from dataclasses import dataclass, field

from .facts import BoardFacts
from .fleet import OK, BoardResult, FleetRun
from .session import BoardSession
from .policy import Finding, Target, evaluate, status_of
from .gather import gather_facts
from . import report


@dataclass
class BoardCheck:
    facts: BoardFacts
    findings: list[Finding] = field(default_factory=list)


def check_job(target: Target):
    def job(session: BoardSession) -> BoardResult:
        facts = gather_facts(session)
        findings = evaluate(session.board.name, facts, target)
        return BoardResult(session.board.name, OK, data=BoardCheck(facts, findings))
    return job


def board_status(result: BoardResult) -> str:
    """ok / mismatch for a probed board, else the runner's own status (unreachable, failed, skipped)."""
    if result.status == OK and isinstance(result.data, BoardCheck):
        return status_of(result.data.findings)
    return result.status


def exit_code(run: FleetRun) -> int:
    """Bit flags, so a script can tell mismatches, unreachable boards and failures apart (report.exit_code,
    with a probed board's status refined to ok / mismatch)."""
    return report.exit_code(run, board_status)


def to_json(run: FleetRun, target: Target, toolkit: dict) -> dict:
    boards = []
    for r in run.results:
        entry = {"board": r.board, "status": board_status(r), "seconds": round(r.seconds, 3),
                 "remote_commands": r.commands, "error": r.error or None}
        if isinstance(r.data, BoardCheck):
            entry["facts"] = r.data.facts.to_dict()
            entry["findings"] = [f.to_dict() for f in r.data.findings]
        boards.append(entry)
    statuses = [b["status"] for b in boards]
    return report.envelope("check", {
        "target": {"sdk": str(target.sdk) if target.sdk else None,
                   "toolkit": str(target.toolkit) if target.toolkit else None},
        "toolkit": toolkit, "boards": boards,
        "summary": {s: statuses.count(s) for s in ("ok", "mismatch", "unreachable", "failed", "skipped")}},
        run, status_of=board_status)
