"""What is deployed on boards: list, roll back and remove models (the layout is deploy.py's)."""
from __future__ import annotations

from dataclasses import dataclass

from . import remote
from .gather import gather_facts
from .deploy import DeployError, activate_script, board_model_dir, model_state, run_or_raise
from .facts import BoardFacts
from .fleet import CHANGED, FAILED, OK, BoardResult
from .session import BoardSession
from .lock import HELD_CHECK, BoardLock, held_params

# Under the board lock (lock.HELD_CHECK): remove the model's directory, which the caller named by a
# validated model name (never '', '.', '..' or a path), so it is always one entry of the model directory.
_REMOVE = """d="$model_dir/$name"
[ -e "$d" ] || { echo absent; exit 0; }
""" + HELD_CHECK + """rm -rf -- "$d" && echo removed
"""


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


def checked_name(name: object) -> str:
    """A model name given to rollback/remove: DeployError (before any connection) unless it is one."""
    try:
        return remote.model_name(name)
    except remote.RemoteValueError as e:
        raise DeployError(str(e)) from None


def rollback_job(name: str, model_dir: str | None, lock_wait: float):
    """Make the version deployed before the active one active again."""
    name = checked_name(name)

    def job(session: BoardSession) -> BoardResult:
        where = board_model_dir(session.board, model_dir)
        with BoardLock(session, lock_wait) as lock:
            facts = gather_facts(session, model_dir=where, system=False)
            active, versions = model_state(facts, name, where)        # board-read values, checked
            if not versions and name not in facts.models_current:
                return BoardResult(session.board.name, FAILED, error=f"no model {name!r} on this board")
            shas = [v["sha256"][:12] for v in versions]
            position = shas.index(active) if active in shas else len(shas)
            if position == 0:
                return BoardResult(session.board.name, FAILED,
                                   error=f"{name}: no earlier version is kept (versions: {', '.join(shas) or 'none'})")
            previous = shas[position - 1]
            script = activate_script(where, name, previous, [], lock_token=lock.token)
            lock.ensure_held()
            run_or_raise(session, script)
            return BoardResult(session.board.name, CHANGED, data={"name": name, "from": active, "to": previous})
    return job


def remove_job(name: str, model_dir: str | None, lock_wait: float):
    name = checked_name(name)

    def job(session: BoardSession) -> BoardResult:
        where = board_model_dir(session.board, model_dir)
        with BoardLock(session, lock_wait) as lock:
            script = remote.script(_REMOVE, model_dir=where, name=name, **held_params(lock.token))
            lock.ensure_held()
            result = run_or_raise(session, script)
            gone = result.stdout.strip() == "removed"
            return BoardResult(session.board.name, CHANGED if gone else OK, data={"name": name, "removed": gone})
    return job
