"""Facts from a board: the probe script run once over the board's session, parsed."""
from __future__ import annotations

from .facts import BoardFacts
from .fleet import OK, BoardResult
from .probe import parse_probe, probe_script
from .session import BoardSession


def gather_facts(session: BoardSession, extra_paths: tuple[str, ...] = (), model_dir: str | None = None,
                 system: bool = True) -> BoardFacts:
    """One remote command: the probe script, with the sudo password (if any) on its stdin. The session learns
    from it how to become root on this board (session.root_mode), where the probe looked."""
    password = session.settings.sudo_password
    script = probe_script(session.board.python, sudo_password_on_stdin=password is not None, extra_paths=extra_paths,
                          model_dir=model_dir, system=system)
    result = session.run(script, stdin=(password + "\n") if password is not None else None)
    facts = parse_probe(result.stdout)
    if facts.root_mode:
        session.root_mode = facts.root_mode
    return facts


def python_tag_job(session: BoardSession) -> BoardResult:
    """The board's CPython tag (e.g. cp311) as its probe reads it, for wheels that must match it."""
    return BoardResult(session.board.name, OK, data=gather_facts(session).python_tag or None)
