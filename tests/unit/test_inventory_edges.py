"""Inventory limits and wording, exactly: the edges of every range, each checked key, the messages with their
file:line and suggestions, and --host/--group parsing. Written from the mutation run on rkdeploy/inventory.py
(234 of 967 changes survived test_inventory.py)."""
import re
import textwrap

import pytest

from rkdeploy.inventory import InventoryError, load


def write(tmp_path, text, name="hosts.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def board_with(tmp_path, line: str):
    if line.startswith("host:"):
        return write(tmp_path, f"boards:\n  b1:\n    port: 22\n    {line}\n")
    return write(tmp_path, f"boards:\n  b1:\n    host: 10.0.0.1\n    {line}\n")


def settings_with(tmp_path, line: str):
    return write(tmp_path, f"settings:\n  {line}\nboards:\n  b1:\n    host: 10.0.0.1\n")


def refused(path) -> str:
    with pytest.raises(InventoryError) as err:
        load(path)
    return str(err.value)


@pytest.mark.parametrize("port,ok", [(1, True), (65535, True), (0, False), (65536, False), ('"22"', True),
                                     ('"00022"', True), ('"065535"', False), ('"65536"', False)])
def test_a_port_is_1_to_65535_also_as_a_quoted_number(tmp_path, port, ok):
    path = board_with(tmp_path, f"port: {port}")
    if ok:
        assert 1 <= load(path).boards["b1"].port <= 65535
    else:
        assert re.search(r"hosts\.yaml:4: .*port.*must be a whole number from 1 to 65535", refused(path))


def test_a_huge_port_is_not_printed_back_whole(tmp_path):
    assert "not 999999999999 " not in refused(board_with(tmp_path, "port: 999999999999"))
    assert "not 99999999999" in refused(board_with(tmp_path, "port: 99999999999"))
    assert "not that" in refused(board_with(tmp_path, "port: 1000000000000"))


@pytest.mark.parametrize("key", ["connect_timeout", "command_timeout"])
@pytest.mark.parametrize("value,ok", [(0.5, True), (1, True), (999999, True), (0, False), (-1, False),
                                      (1000000, False), ("true", False), ('"5"', False)])
def test_timeouts_are_seconds_above_0_and_below_a_million(tmp_path, key, value, ok):
    path = settings_with(tmp_path, f"{key}: {value}")
    if ok:
        assert load(path).settings[key] == value
    else:
        assert f"hosts.yaml:2: settings: {key}: must be a number of seconds above 0, not a " in refused(path)


@pytest.mark.parametrize("value,ok", [(1, True), (100000, True), (0, False), (100001, False), ("1.5", False),
                                      ("true", False)])
def test_parallel_is_1_to_100000_boards(tmp_path, value, ok):
    path = settings_with(tmp_path, f"parallel: {value}")
    if ok:
        assert load(path).settings["parallel"] == value
    else:
        assert "hosts.yaml:2: settings: parallel: must be a whole number of boards, 1 or more, not a " in refused(path)


@pytest.mark.parametrize("where,key", [("board", "key"), ("board", "soc"), ("board", "python"), ("board", "host"),
                                       ("board", "user"), ("board", "adb"), ("settings", "known_hosts"),
                                       ("settings", "ssh_config")])
@pytest.mark.parametrize("bad", ['"a\\nb"', '"a\\rb"', '"a\\0b"'])
def test_every_text_value_is_one_line_without_nul(tmp_path, where, key, bad):
    path = board_with(tmp_path, f"{key}: {bad}") if where == "board" else settings_with(tmp_path, f"{key}: {bad}")
    expected = (f"hosts.yaml:4: board 'b1': {key}: " if where == "board" else f"hosts.yaml:2: settings: {key}: ")
    assert expected + "must be one line of text without NUL characters" in refused(path)


@pytest.mark.parametrize("line,says", [
    ("soc: yes", "soc: must be a string, not a boolean (true)"),
    ("soc: 5", "soc: must be a string, not a number (5)"),
    ("soc: 12345678901234567890", "soc: must be a string, not a number (12345678901234567890)"),
    ("soc: 123456789012345678901", "soc: must be a string, not a number"),
    ("soc: [a]", "soc: must be a string, not a list"),
    ('port: ""', "port: must be a whole number from 1 to 65535, not a string ('')"),
    ("port: " + "9" * 50, "port: must be a whole number from 1 to 65535, not that"),
    ("groups: {a: 1}", "groups: must be a list of group names (or one name), not a mapping"),
    ("groups: 5", "groups: must be a list of group names (or one name), not a number (5)"),
    ('groups: [a, ""]', "groups: must be a list of group names, and string ('') is not one"),
])
def test_a_value_of_the_wrong_kind_is_named_by_its_kind(tmp_path, line, says):
    message = refused(board_with(tmp_path, line))
    assert message == f"{tmp_path / 'hosts.yaml'}:4: board 'b1': {says}"


def test_a_board_name_may_not_hold_spaces_commas_or_at_signs(tmp_path):
    for name in ('"a b"', '"a,b"', '"@a"', '"a@b"'):
        message = refused(write(tmp_path, f"boards:\n  {name}:\n    host: 10.0.0.1\n"))
        assert "hosts.yaml:2: boards:" in message and "a board name must be non-empty, without spaces, commas" in message


def test_unknown_keys_are_named_with_a_suggestion_and_the_allowed_ones(tmp_path):
    message = refused(board_with(tmp_path, "prot: 22"))
    assert message == (f"{tmp_path / 'hosts.yaml'}:4: unknown key 'prot' in board 'b1' (did you mean port, host?) "
                       "(allowed: adb, groups, host, key, port, python, soc, user, vars)")
    assert "did you mean" not in refused(board_with(tmp_path, "zzzzzz: 1"))


def test_invalid_yaml_names_its_line_and_problem(tmp_path):
    message = refused(write(tmp_path, "boards:\n  b1:\n    host: [10.0.0.1\n"))
    assert re.match(r".*hosts\.yaml:\d+: invalid YAML: \S", message) and ":0:" not in message


def test_a_relative_key_path_is_resolved_against_the_inventorys_folder(tmp_path):
    (tmp_path / "keys").mkdir()
    inv = load(board_with(tmp_path, "key: keys/id"))
    assert inv.boards["b1"].key == str(tmp_path / "keys/id")
    assert load(board_with(tmp_path, "key: /abs/id")).boards["b1"].key == "/abs/id"


# -- selection ---------------------------------------------------------------------------------------------------

FLEET = """
groups:
  line1: {}
  line2: {}
  lab: {}
boards:
  cam-01: {host: 10.0.0.1, groups: [line1]}
  cam-02: {host: 10.0.0.2, groups: [line2]}
  cam-03: {host: 10.0.0.3, groups: [line1, line2]}
  bench: {host: 10.0.0.4, groups: [lab]}
"""


def names(boards):
    return [b.name for b in boards]


def test_several_groups_are_joined_and_hosts_add_to_them(tmp_path):
    inv = load(write(tmp_path, FLEET))
    assert names(inv.select(group="line1")) == ["cam-01", "cam-03"]
    assert names(inv.select(group="line2,lab")) == ["cam-02", "cam-03", "bench"]
    assert names(inv.select(group="lab", hosts="cam-01")) == ["cam-01", "bench"]


def test_unknown_group_or_board_is_named_with_close_matches(tmp_path):
    inv = load(write(tmp_path, FLEET))
    with pytest.raises(InventoryError) as err:
        inv.select(group="line3")
    assert str(err.value) == f"{tmp_path / 'hosts.yaml'}: no group 'line3' (did you mean line2, line1?)"
    with pytest.raises(InventoryError) as err:
        inv.select(hosts="cam-0")
    assert str(err.value) == f"{tmp_path / 'hosts.yaml'}: no board 'cam-0' (did you mean cam-03, cam-02, cam-01?)"
    with pytest.raises(InventoryError) as err:
        inv.select(hosts="zzz")
    assert str(err.value) == f"{tmp_path / 'hosts.yaml'}: no board 'zzz'"


def test_nothing_selected_says_how_to_select():
    from rkdeploy.inventory import Inventory

    with pytest.raises(InventoryError) as err:
        Inventory(path=None, boards={}, settings={}).select()
    assert str(err.value) == "select boards with --host NAME[,NAME…], --group GROUP or --all"


def test_only_names_with_glob_characters_are_globs(tmp_path):
    inv = load(write(tmp_path, FLEET))
    assert names(inv.select(hosts="cam-0[12]")) == ["cam-01", "cam-02"]
    assert names(inv.select(hosts="cam-0?")) == ["cam-01", "cam-02", "cam-03"]
    assert names(inv.select(hosts=" bench , cam-01 ,")) == ["cam-01", "bench"]


def test_a_retry_file_with_bytes_that_are_not_utf8_still_selects_its_boards(tmp_path):
    inv = load(write(tmp_path, FLEET))
    retry = tmp_path / "retry.txt"
    retry.write_bytes(b"cam-01\nbench\n")
    assert names(inv.select(hosts=f"@{retry}")) == ["cam-01", "bench"]
    retry.write_bytes(b"cam-01\n\xff\n")
    with pytest.raises(InventoryError, match="no board '\ufffd'"):
        inv.select(hosts=f"@{retry}")
    with pytest.raises(InventoryError, match=r"cannot read the retry file: No such file or directory$"):
        inv.select(hosts=f"@{tmp_path / 'gone.txt'}")


@pytest.mark.parametrize("text,says", [
    ("", ":1: no boards defined (add a 'boards:' mapping)"),
    ("settings: {}\n", ":1: no boards defined (add a 'boards:' mapping)"),
    ("groups:\n  true: {}\nboards:\n  b1: {host: h}\n", ":2: groups: True: a group name must be a string, not a boolean (true)"),
    ("groups:\n  g: 5\nboards:\n  b1: {host: h}\n", ":2: group 'g' must be a mapping (vars:, boards:), not a number (5)"),
    ('groups:\n  1: {}\n  "1": {}\nboards:\n  b1: {host: h}\n', ":3: duplicate group name '1' (also at {path}:2)"),
    ("boards:\n  b1: 5\n", ":2: board 'b1' must be a mapping with at least 'host:', not a number (5)"),
    ("boards:\n  b1: {port: 22}\n", ":2: board 'b1' has no 'host:'"),
    ("bords: {}\nboards:\n  b1: {host: h}\n",
     ":1: unknown key 'bords' in top level (did you mean boards?) (allowed: boards, defaults, groups, settings)"),
    ("settings:\n  conect_timeout: 1\nboards:\n  b1: {host: h}\n",
     ":2: unknown key 'conect_timeout' in settings (did you mean connect_timeout, command_timeout?) (allowed: "
     "command_timeout, connect_timeout, known_hosts, parallel, ssh_config)"),
    ("groups:\n  g: {var: {}}\nboards:\n  b1: {host: h}\n",
     ":2: unknown key 'var' in group 'g' (did you mean vars?) (allowed: boards, vars)"),
])
def test_structural_errors_name_the_file_and_line_exactly(tmp_path, text, says):
    path = write(tmp_path, text)
    assert refused(path) == f"{path}" + says.replace("{path}", str(path))


def test_defaults_fill_each_board_and_group_vars_sit_between_defaults_and_the_boards_own(tmp_path):
    inv = load(write(tmp_path, """\
        defaults:
          port: 2222
          user: pi
          groups: [all-cams]
          vars: {a: 1, b: 1}
        groups:
          all-cams:
            vars: {b: 2, c: 2}
          extra:
            boards: [b2]
        boards:
          b1: {host: h1, vars: {c: 3}}
          b2: {host: h2, port: 22, groups: [mine], user: root, python: /venv/bin/python}
        """))
    b1, b2 = inv.boards["b1"], inv.boards["b2"]
    assert (b1.port, b1.user, b1.groups, b1.python, b1.vars) == (2222, "pi", ("all-cams",), "python3",
                                                                 {"a": 1, "b": 2, "c": 3})
    assert (b2.port, b2.user, b2.groups, b2.python, b2.vars) == (22, "root", ("mine", "extra"), "/venv/bin/python",
                                                                 {"a": 1, "b": 1})
    assert load(write(tmp_path, "boards:\n  b1: {host: h}\n")).boards["b1"].port == 22
