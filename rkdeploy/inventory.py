"""The fleet inventory: YAML files that name boards, how to reach them and what they are.

Every error names the file, the line and the offending key, because a typo in
an inventory of forty boards should cost seconds, not an afternoon.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BOARD_KEYS = {"host", "port", "user", "key", "soc", "groups", "adb", "vars", "python"}
DEFAULT_KEYS = BOARD_KEYS - {"host", "adb"}
GROUP_KEYS = {"vars", "boards"}
SETTINGS_KEYS = {"known_hosts", "connect_timeout", "command_timeout", "parallel", "ssh_config"}
TOP_KEYS = {"settings", "defaults", "groups", "boards"}


class InventoryError(ValueError):
    """A malformed inventory or a selection that names nothing; the message is one line."""


@dataclass(frozen=True)
class Board:
    name: str
    host: str
    port: int = 22
    user: str | None = None
    key: str | None = None
    soc: str | None = None
    groups: tuple[str, ...] = ()
    adb: str | None = None
    python: str = "python3"
    vars: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Inventory:
    path: Path
    boards: dict[str, Board]
    settings: dict[str, Any]

    @property
    def groups(self) -> set[str]:
        return {g for b in self.boards.values() for g in b.groups}

    def select(self, hosts: str | None = None, group: str | None = None, all: bool = False) -> list[Board]:
        """Boards named by --host (names, globs, comma-separated), --group, or --all, in inventory order."""
        if not (hosts or group or all):
            raise InventoryError("select boards with --host NAME[,NAME…], --group GROUP or --all")
        chosen: set[str] = set(self.boards) if all else set()
        if group:
            for g in group.split(","):
                if g not in self.groups:
                    raise InventoryError(f"{self.path}: no group {g!r}{_suggest(g, self.groups)}")
                chosen |= {n for n, b in self.boards.items() if g in b.groups}
        for pattern in _split(hosts):
            matched = fnmatch.filter(self.boards, pattern) if _is_glob(pattern) else (
                [pattern] if pattern in self.boards else [])
            if not matched:
                raise InventoryError(f"{self.path}: no board {pattern!r}{_suggest(pattern, self.boards)}")
            chosen |= set(matched)
        return [b for n, b in self.boards.items() if n in chosen]


def _split(hosts: str | None) -> list[str]:
    if not hosts:
        return []
    if hosts.startswith("@"):  # a retry file written by an earlier run
        return Path(hosts[1:]).read_text().split()
    return [h.strip() for h in hosts.split(",") if h.strip()]


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and refuses duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    result = _Located()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise InventoryError(f"{loader.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                                 f"(first at line {result.lines[key]})")
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


class _Located(dict):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lines: dict[Any, int] = {}
        self.line = 0


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(path: str | Path) -> Inventory:
    path = Path(path).expanduser()
    if not path.exists():
        raise InventoryError(f"{path}: inventory not found (write one like inventory/example.yaml, or pass --inventory)")
    text = path.read_text()
    loader = _LineLoader(text)
    loader.name = str(path)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise InventoryError(f"{path}:{line}: invalid YAML: {e.problem or e.context}") from None
    finally:
        loader.dispose()
    if doc is None:
        doc = _Located()
    where = lambda m, k: f"{path}:{m.lines.get(k, m.line)}"  # noqa: E731
    if not isinstance(doc, dict):
        raise InventoryError(f"{path}:1: an inventory is a mapping with 'boards:' (and optional settings, defaults, groups)")
    _check_keys(doc, TOP_KEYS, path, "top level")
    settings = _mapping(doc, "settings", path)
    _check_keys(settings, SETTINGS_KEYS, path, "settings")
    defaults = _mapping(doc, "defaults", path)
    _check_keys(defaults, DEFAULT_KEYS, path, "defaults")
    groups = _mapping(doc, "groups", path)
    group_members: dict[str, set[str]] = {}
    group_vars: dict[str, dict] = {}
    for gname, g in groups.items():
        g = g if g is not None else _Located()
        if not isinstance(g, dict):
            raise InventoryError(f"{where(groups, gname)}: group {gname!r} must be a mapping (vars:, boards:)")
        _check_keys(g, GROUP_KEYS, path, f"group {gname!r}")
        group_members[gname] = set(g.get("boards") or [])
        group_vars[gname] = dict(g.get("vars") or {})
    boards_doc = _mapping(doc, "boards", path)
    if not boards_doc:
        raise InventoryError(f"{path}:{doc.line or 1}: no boards defined (add a 'boards:' mapping)")
    boards: dict[str, Board] = {}
    for name, spec in boards_doc.items():
        if not isinstance(spec, dict):
            raise InventoryError(f"{where(boards_doc, name)}: board {name!r} must be a mapping with at least 'host:'")
        _check_keys(spec, BOARD_KEYS, path, f"board {name!r}")
        if not spec.get("host"):
            raise InventoryError(f"{where(boards_doc, name)}: board {name!r} has no 'host:'")
        merged = {**{k: v for k, v in defaults.items() if k != "vars"}, **{k: v for k, v in spec.items() if k != "vars"}}
        member_of = list(spec.get("groups") or defaults.get("groups") or [])
        member_of += [g for g, members in group_members.items() if name in members and g not in member_of]
        for g in member_of:
            if g not in group_vars:
                group_vars.setdefault(g, {})
        variables: dict[str, Any] = dict(defaults.get("vars") or {})
        for g in member_of:
            variables.update(group_vars[g])
        variables.update(spec.get("vars") or {})
        try:
            port = int(merged.get("port", 22))
        except (TypeError, ValueError):
            raise InventoryError(f"{path}:{spec.lines.get('port', spec.line)}: board {name!r}: port must be a number") from None
        boards[str(name)] = Board(
            name=str(name), host=str(merged["host"]), port=port, user=merged.get("user"),
            key=_resolve(path, merged.get("key")), soc=(str(merged["soc"]).lower() if merged.get("soc") else None),
            groups=tuple(member_of), adb=merged.get("adb"), python=merged.get("python") or "python3", vars=variables)
    for gname, members in group_members.items():
        for member in members - set(boards):
            raise InventoryError(f"{where(groups, gname)}: group {gname!r} lists unknown board {member!r}"
                                 f"{_suggest(member, boards)}")
    settings = dict(settings)
    if settings.get("known_hosts"):
        settings["known_hosts"] = _resolve(path, settings["known_hosts"])
    return Inventory(path=path, boards=boards, settings=settings)


def _resolve(inventory_path: Path, value: str | None) -> str | None:
    """Paths in an inventory are relative to the inventory file."""
    if not value:
        return None
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (inventory_path.parent / p).resolve())


def _mapping(doc: dict, key: str, path: Path) -> dict:
    value = doc.get(key)
    if value is None:
        return _Located()
    if not isinstance(value, dict):
        raise InventoryError(f"{path}:{doc.lines.get(key, 0)}: '{key}' must be a mapping")
    return value


def _check_keys(mapping: dict, allowed: set[str], path: Path, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            line = getattr(mapping, "lines", {}).get(key, getattr(mapping, "line", 0))
            raise InventoryError(f"{path}:{line}: unknown key {key!r} in {what}{_suggest(str(key), allowed)}"
                                 f" (allowed: {', '.join(sorted(allowed))})")
