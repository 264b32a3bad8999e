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
        try:
            return Path(hosts[1:]).expanduser().read_text(errors="replace").split()
        except OSError as e:
            raise InventoryError(f"--host {hosts}: cannot read the retry file: {e.strerror or e}") from None
    return [h.strip() for h in hosts.split(",") if h.strip()]


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, sorted(map(str, known)), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and refuses duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    result = _Located()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise InventoryError(f"{loader.name}:{key_node.start_mark.line + 1}: a key must be a plain name, "
                                 f"not a {_kind(key)}") from None
        if key in result:
            raise InventoryError(f"{loader.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                                 f"(first at line {result.lines[key]})")
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_int(loader: _LineLoader, node: yaml.ScalarNode) -> int:
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:           # int() refuses more than 4300 digits
        raise InventoryError(f"{loader.name}:{node.start_mark.line + 1}: the number {node.value[:20]}… is "
                             f"{len(node.value)} characters long: not a value an inventory holds") from None


class _Located(dict):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lines: dict[Any, int] = {}
        self.line = 0


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _kind(value: Any) -> str:
    """What a YAML value is, in the inventory's words."""
    if value is None:
        return "empty value"
    if isinstance(value, bool):
        return f"boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, (int, float)):
        return f"number ({value!r})" if len(repr(value)) <= 20 else "number"
    if isinstance(value, str):
        return f"string ({value[:40]!r})"
    return type(value).__name__


def _read(path: Path) -> tuple[Any, int]:
    """The parsed document and the line it starts on; InventoryError for anything unreadable."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InventoryError(f"{path}: cannot read the inventory: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InventoryError(f"{path}:{line}: not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})") from None
    loader = None
    try:
        loader = _LineLoader(text)            # the reader refuses control characters already here
        loader.name = str(path)
        node = loader.get_single_node()
        doc = loader.construct_document(node) if node is not None else None
        return doc, (node.start_mark.line + 1 if node is not None else 1)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise InventoryError(f"{path}:{line}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:             # e.g. a control character the YAML reader refuses
        position = getattr(e, "position", None)
        line = text[:position].count("\n") + 1 if isinstance(position, int) else 0
        raise InventoryError(f"{path}:{line}: invalid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise InventoryError(f"{path}: invalid YAML: nested too deeply for an inventory") from None
    finally:
        if loader is not None:
            loader.dispose()


def _fail(path: Path, mapping: dict, key: Any, what: str, problem: str) -> InventoryError:
    line = getattr(mapping, "lines", {}).get(key, getattr(mapping, "line", 0))
    return InventoryError(f"{path}:{line}: {what}: {key}: {problem}")


def _check_string(path: Path, mapping: dict, key: str, what: str, *, hint: str = "") -> str | None:
    value = mapping.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(path, mapping, key, what, f"must be a string, not a {_kind(value)}{hint}")
    if "\0" in value or "\n" in value or "\r" in value:
        raise _fail(path, mapping, key, what, "must be one line of text without NUL characters")
    return value


def _names(path: Path, mapping: dict, key: str, what: str, noun: str) -> list[str]:
    """A list of names (groups of a board, boards of a group): a single string is one name, never split into
    letters; numbers are names too (YAML reads `- 1` as a number)."""
    value = mapping.get(key)
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _fail(path, mapping, key, what, f"must be a list of {noun} names (or one name), not a {_kind(value)}")
    names = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip():
            raise _fail(path, mapping, key, what, f"must be a list of {noun} names, and {_kind(item)} is not one")
        names.append(str(item).strip())
    return names


def _check_vars(path: Path, mapping: dict, what: str) -> dict:
    value = mapping.get("vars")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, mapping, "vars", what, f"must be a mapping (name: value), not a {_kind(value)}")
    return dict(value)


def _check_port(path: Path, mapping: dict, what: str) -> int | None:
    value = mapping.get("port")
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 5:
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise _fail(path, mapping, "port", what, f"must be a whole number from 1 to 65535, not a {_kind(value)}")
    if not 1 <= number <= 65535:
        raise _fail(path, mapping, "port", what,
                    f"must be a whole number from 1 to 65535, not {number if abs(number) < 10 ** 12 else 'that'}")
    return number


def _check_board_fields(path: Path, mapping: dict, what: str) -> None:
    """Every value a board (or defaults) can set, checked where it is written (so the line is that one)."""
    quote = " (quote it)"
    for key in ("host", "user", "adb"):
        _check_string(path, mapping, key, what, hint=quote)
    for key in ("key", "soc", "python"):
        _check_string(path, mapping, key, what)
    _check_port(path, mapping, what)
    _names(path, mapping, "groups", what, "group")
    _check_vars(path, mapping, what)


def _check_settings(path: Path, settings: dict) -> None:
    for key in ("known_hosts", "ssh_config"):
        _check_string(path, settings, key, "settings")
    for key in ("connect_timeout", "command_timeout"):
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 < value < 1e6):
            raise _fail(path, settings, key, "settings", f"must be a number of seconds above 0, not a {_kind(value)}")
    value = settings.get("parallel")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100000):
        raise _fail(path, settings, "parallel", "settings", f"must be a whole number of boards, 1 or more, "
                                                             f"not a {_kind(value)}")


def _board_name(path: Path, boards_doc: dict, name: Any) -> str:
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise InventoryError(f"{path}:{boards_doc.lines.get(name, boards_doc.line)}: boards: {name!r}: a board name "
                             f"must be a string, not a {_kind(name)}")
    text = str(name)
    if not text or any(ch.isspace() or ch in ",@\0" for ch in text) or text.startswith("@"):
        raise InventoryError(f"{path}:{boards_doc.lines.get(name, boards_doc.line)}: boards: {text!r}: a board name "
                             "must be non-empty, without spaces, commas or '@' (it is used in --host and retry files)")
    return text


def load(path: str | Path) -> Inventory:
    path = Path(path).expanduser()
    if not path.exists():
        raise InventoryError(f"{path}: inventory not found (write one like inventory/example.yaml, or pass --inventory)")
    doc, first_line = _read(path)
    if doc is None:
        doc = _Located()
    where = lambda m, k: f"{path}:{m.lines.get(k, m.line)}"  # noqa: E731
    if not isinstance(doc, dict):
        raise InventoryError(f"{path}:{first_line}: top level: an inventory is a mapping with 'boards:' (and optional "
                             f"settings, defaults, groups), not a {_kind(doc)}")
    _check_keys(doc, TOP_KEYS, path, "top level")
    settings = _mapping(doc, "settings", path)
    _check_keys(settings, SETTINGS_KEYS, path, "settings")
    _check_settings(path, settings)
    defaults = _mapping(doc, "defaults", path)
    _check_keys(defaults, DEFAULT_KEYS, path, "defaults")
    _check_board_fields(path, defaults, "defaults")
    groups = _mapping(doc, "groups", path)
    group_members: dict[str, list[str]] = {}
    group_vars: dict[str, dict] = {}
    group_lines: dict[str, str] = {}
    for gname, g in groups.items():
        g = g if g is not None else _Located()
        if isinstance(gname, bool) or not isinstance(gname, (str, int)) or not str(gname).strip():
            raise InventoryError(f"{where(groups, gname)}: groups: {gname!r}: a group name must be a string, "
                                 f"not a {_kind(gname)}")
        if not isinstance(g, dict):
            raise InventoryError(f"{where(groups, gname)}: group {gname!r} must be a mapping (vars:, boards:), "
                                 f"not a {_kind(g)}")
        _check_keys(g, GROUP_KEYS, path, f"group {gname!r}")
        name = str(gname)
        if name in group_members:
            raise InventoryError(f"{where(groups, gname)}: duplicate group name {name!r} (also at {group_lines[name]})")
        group_members[name] = _names(path, g, "boards", f"group {name!r}", "board")
        group_vars[name] = _check_vars(path, g, f"group {name!r}")
        group_lines[name] = where(groups, gname)
    boards_doc = _mapping(doc, "boards", path)
    if not boards_doc:
        raise InventoryError(f"{path}:{doc.lines.get('boards', doc.line or 1)}: no boards defined (add a 'boards:' mapping)")
    boards: dict[str, Board] = {}
    board_lines: dict[str, str] = {}
    default_groups = _names(path, defaults, "groups", "defaults", "group")
    for raw_name, spec in boards_doc.items():
        name = _board_name(path, boards_doc, raw_name)
        if name in boards:
            raise InventoryError(f"{where(boards_doc, raw_name)}: duplicate board name {name!r} "
                                 f"(also at {board_lines[name]})")
        if not isinstance(spec, dict):
            raise InventoryError(f"{where(boards_doc, raw_name)}: board {name!r} must be a mapping with at least "
                                 f"'host:', not a {_kind(spec)}")
        what = f"board {name!r}"
        _check_keys(spec, BOARD_KEYS, path, what)
        _check_board_fields(path, spec, what)
        if not spec.get("host"):
            raise InventoryError(f"{where(boards_doc, raw_name)}: board {name!r} has no 'host:'")
        merged = {**{k: v for k, v in defaults.items() if k != "vars"}, **{k: v for k, v in spec.items() if k != "vars"}}
        member_of = list(dict.fromkeys(_names(path, spec, "groups", what, "group") or default_groups))
        member_of += [g for g, members in group_members.items() if name in members and g not in member_of]
        for g in member_of:
            group_vars.setdefault(g, {})
        variables: dict[str, Any] = _check_vars(path, defaults, "defaults")
        for g in member_of:
            variables.update(group_vars[g])
        variables.update(_check_vars(path, spec, what))
        port = _check_port(path, spec, what) or _check_port(path, defaults, "defaults") or 22
        board_lines[name] = where(boards_doc, raw_name)
        boards[name] = Board(
            name=name, host=merged["host"], port=port, user=merged.get("user"),
            key=_resolve(path, merged.get("key")), soc=(merged["soc"].lower() if merged.get("soc") else None),
            groups=tuple(member_of), adb=merged.get("adb"), python=merged.get("python") or "python3", vars=variables)
    for gname, members in group_members.items():
        for member in members:
            if member not in boards:
                raise InventoryError(f"{group_lines[gname]}: group {gname!r} lists unknown board {member!r}"
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
        raise InventoryError(f"{path}:{doc.lines.get(key, 0)}: {key}: '{key}' must be a mapping, not a {_kind(value)}")
    return value


def _check_keys(mapping: dict, allowed: set[str], path: Path, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            line = getattr(mapping, "lines", {}).get(key, getattr(mapping, "line", 0))
            raise InventoryError(f"{path}:{line}: unknown key {key!r} in {what}{_suggest(str(key), allowed)}"
                                 f" (allowed: {', '.join(sorted(allowed))})")
