"""What is deployed on boards: list, roll back and remove models (the layout is deploy.py's)."""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from .gather import gather_facts
from .deploy import activate_script, board_model_dir, run_or_raise
from .facts import BoardFacts
from .fleet import CHANGED, FAILED, OK, BoardResult, BoardSession
from .lock import BoardLock


@dataclass
class DeployedModel:
    name: str
    active: str            # sha12 of the active version, "" if none
    versions: list[dict]   # oldest first

    @property
    def active_meta(self) -> dict:
        return next((v for v in self.versions if v.get("sha256", "")[:12] == self.active), {})


def deployed(facts: BoardFacts) -> list[DeployedModel]:
    names = sorted({v.get("name", "") for v in facts.model_versions} | set(facts.models_current))
    result = []
    for name in names:
        versions = sorted((v for v in facts.model_versions if v.get("name") == name),
                          key=lambda v: v.get("deployed_at", ""))
        current = facts.models_current.get(name, "")
        active = current.removeprefix("versions/").removesuffix(".rknn")
        result.append(DeployedModel(name, active, versions))
    return result


def list_job(model_dir: str | None):
    def job(session: BoardSession) -> BoardResult:
        facts = gather_facts(session, model_dir=board_model_dir(session.board, model_dir), system=False)
        return BoardResult(session.board.name, OK, data=deployed(facts))
    return job


def rollback_job(name: str, model_dir: str | None, lock_wait: float):
    """Make the version deployed before the active one active again."""
    def job(session: BoardSession) -> BoardResult:
        where = board_model_dir(session.board, model_dir)
        with BoardLock(session, lock_wait):
            facts = gather_facts(session, model_dir=where, system=False)
            model = next((m for m in deployed(facts) if m.name == name), None)
            if model is None:
                return BoardResult(session.board.name, FAILED, error=f"no model {name!r} on this board")
            shas = [v["sha256"][:12] for v in model.versions]
            position = shas.index(model.active) if model.active in shas else len(shas)
            if position == 0:
                return BoardResult(session.board.name, FAILED,
                                   error=f"{name}: no earlier version is kept (versions: {', '.join(shas) or 'none'})")
            previous = shas[position - 1]
            run_or_raise(session, activate_script(where, name, previous, []))
            return BoardResult(session.board.name, CHANGED, data={"name": name, "from": model.active, "to": previous})
    return job


def remove_job(name: str, model_dir: str | None, lock_wait: float):
    def job(session: BoardSession) -> BoardResult:
        where = board_model_dir(session.board, model_dir)
        with BoardLock(session, lock_wait):
            result = run_or_raise(session, f"d={shlex.quote(f'{where}/{name}')}; "
                                           '[ -e "$d" ] || { echo absent; exit 0; }; rm -rf -- "$d" && echo removed')
            gone = result.stdout.strip() == "removed"
            return BoardResult(session.board.name, CHANGED if gone else OK, data={"name": name, "removed": gone})
    return job
