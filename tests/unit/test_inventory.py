"""Inventories: selection by name, glob and group; every malformed file named with file:line."""
import textwrap

import pytest

from rkdeploy.inventory import InventoryError, load

ROOT_EXAMPLE = __import__("pathlib").Path(__file__).parents[2] / "inventory/example.yaml"


def write(tmp_path, text):
    path = tmp_path / "hosts.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_documented_example_loads_with_defaults_groups_and_vars():
    inv = load(ROOT_EXAMPLE)
    cam = inv.boards["cam-01"]
    assert (cam.user, cam.port, cam.soc, cam.adb) == ("rock", 22, "rk3588", "192.0.2.11:5555")
    assert cam.vars == {"model_dir": "/opt/models"}
    assert inv.boards["bench-rk3568"].soc == "rk3568"
    assert inv.boards["bench-rk3568"].groups == ("lab-bench",)
    assert inv.boards["bench-rk3568"].python == "/opt/rknn-venv/bin/python3"


def test_selection_by_names_globs_groups_and_all_keeps_inventory_order():
    inv = load(ROOT_EXAMPLE)
    assert [b.name for b in inv.select(hosts="cam-02,cam-01")] == ["cam-01", "cam-02"]
    assert [b.name for b in inv.select(hosts="cam-*")] == ["cam-01", "cam-02"]
    assert [b.name for b in inv.select(group="lab-bench")] == ["bench-rk3568"]
    assert len(inv.select(all=True)) == 3


def test_an_unknown_board_name_lists_the_close_matches():
    with pytest.raises(InventoryError, match=r"no board 'cam-1' \(did you mean cam-01"):
        load(ROOT_EXAMPLE).select(hosts="cam-1")


def test_selecting_nothing_says_how_to_select():
    with pytest.raises(InventoryError, match="--host"):
        load(ROOT_EXAMPLE).select()


def test_a_retry_file_selects_the_boards_it_lists(tmp_path):
    retry = tmp_path / "retry.txt"
    retry.write_text("cam-02\n")
    assert [b.name for b in load(ROOT_EXAMPLE).select(hosts=f"@{retry}")] == ["cam-02"]


@pytest.mark.parametrize("text,line,needle", [
    ("boards:\n  a:\n    host: [1.2.3.4\n", 4, "invalid YAML"),
    ("boards:\n  a:\n    user: rock\n", 2, "board 'a' has no 'host:'"),
    ("boards:\n  a:\n    host: x\n    hots: y\n", 4, "unknown key 'hots' in board 'a'"),
    ("boards:\n  a:\n    host: x\n  b:\n    host: y\n  a:\n    host: z\n", 6, "duplicate key 'a' (first at line 2)"),
    ("defaults:\n  user: rock\n  colour: blue\nboards:\n  a: {host: x}\n", 3, "unknown key 'colour' in defaults"),
    ("groups:\n  g:\n    boards: [nope]\nboards:\n  a: {host: x}\n", 2, "group 'g' lists unknown board 'nope'"),
    ("boards:\n  a:\n    host: x\n    port: ssh\n", 4, "board 'a': port: must be a whole number from 1 to 65535"),
])
def test_malformed_inventories_give_one_line_with_file_and_line(tmp_path, text, line, needle):
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert needle in message and "\n" not in message


def test_a_missing_inventory_file_says_where_to_start(tmp_path):
    with pytest.raises(InventoryError, match="inventory/example.yaml"):
        load(tmp_path / "nope.yaml")


def test_relative_key_and_known_hosts_paths_are_relative_to_the_inventory(tmp_path):
    path = write(tmp_path, "settings:\n  known_hosts: kh\ndefaults:\n  key: keys/id\nboards:\n  a: {host: x}\n")
    inv = load(path)
    assert inv.settings["known_hosts"] == str(tmp_path / "kh")
    assert inv.boards["a"].key == str(tmp_path / "keys/id")


# -- bad input: one InventoryError naming file, line and key, never a traceback ------------------------------

@pytest.mark.parametrize("text,line,needle", [
    ("boards:\n  a:\n    host: x\n    vars: [1]\n", 4, "board 'a': vars: must be a mapping (name: value), not a list"),
    ("defaults:\n  vars: 3\nboards:\n  a: {host: x}\n", 2, "defaults: vars: must be a mapping"),
    ("groups:\n  g:\n    vars: [x]\nboards:\n  a: {host: x}\n", 3, "group 'g': vars: must be a mapping"),
    ("boards:\n  a:\n    host: x\n    port: 70000\n", 4, "board 'a': port: must be a whole number from 1 to 65535, not 70000"),
    ("boards:\n  a:\n    host: x\n    port: '22x'\n", 4, "board 'a': port: must be a whole number from 1 to 65535, not a string ('22x')"),
    ("boards:\n  a:\n    host: x\n    port: 0\n", 4, "port: must be a whole number from 1 to 65535, not 0"),
    ("boards:\n  a:\n    host: x\n    port: 22.5\n", 4, "port: must be a whole number from 1 to 65535, not a number (22.5)"),
    ("boards:\n  a:\n    host: x\n    port: true\n", 4, "port: must be a whole number from 1 to 65535, not a boolean"),
    ("defaults:\n  port: -1\nboards:\n  a: {host: x}\n", 2, "defaults: port: must be a whole number from 1 to 65535"),
    ("boards:\n  a:\n    host: [x, y]\n", 3, "board 'a': host: must be a string, not a list"),
    ("boards:\n  a:\n    host: x\n    user: {name: rock}\n", 4, "board 'a': user: must be a string, not a mapping"),
    ("boards:\n  a:\n    host: x\n    key: 5\n", 4, "board 'a': key: must be a string, not a number (5)"),
    ("boards:\n  a:\n    host: x\n    adb: 12345\n", 4, "board 'a': adb: must be a string, not a number (12345) (quote it)"),
    ("boards:\n  a:\n    host: x\n    groups: {g: 1}\n", 4, "board 'a': groups: must be a list of group names (or one name)"),
    ("boards:\n  a:\n    host: x\n    groups: [[g]]\n", 4, "board 'a': groups: must be a list of group names, and list is not one"),
    ("groups:\n  g:\n    boards: {a: 1}\nboards:\n  a: {host: x}\n", 3, "group 'g': boards: must be a list of board names"),
    ("boards:\n  ? [a, b]\n  : {host: x}\n", 2, "a key must be a plain name, not a list"),
    ("boards:\n  1.5: {host: x}\n", 2, "boards: 1.5: a board name must be a string, not a number (1.5)"),
    ("boards:\n  'a b': {host: x}\n", 2, "a board name must be non-empty, without spaces, commas or '@'"),
    ("boards:\n  1: {host: x}\n  '1': {host: y}\n", 3, "duplicate board name '1' (also at "),
    ("- a\n- b\n", 1, "top level: an inventory is a mapping with 'boards:' (and optional settings, defaults, groups), not a list"),
    ("\n\njust text\n", 3, "top level: an inventory is a mapping"),
    ("boards: [a, b]\n", 1, "boards: 'boards' must be a mapping, not a list"),
    ("settings:\n  connect_timeout: soon\nboards:\n  a: {host: x}\n", 2, "settings: connect_timeout: must be a number of seconds"),
    ("settings:\n  parallel: 0\nboards:\n  a: {host: x}\n", 2, "settings: parallel: must be a whole number of boards"),
    ("settings:\n  known_hosts: [a]\nboards:\n  a: {host: x}\n", 2, "settings: known_hosts: must be a string"),
    ("boards:\n  a:\n    host: x\n    port: " + "1" * 20000 + "\n", 4, "characters long: not a value an inventory holds"),
    ("boards:\n  a:\n    host: \"x\\0y\"\n", 3, "host: must be one line of text without NUL characters"),
    ("boards:\n  a:\n    host: x\x07\n", 3, "invalid YAML"),
])
def test_bad_values_give_one_inventory_error_with_file_line_and_key(tmp_path, text, line, needle):
    path = tmp_path / "hosts.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert needle in message and "\n" not in message, message


def test_a_single_group_name_is_one_group_not_split_into_letters(tmp_path):
    inv = load(write(tmp_path, "groups:\n  line1:\n    boards: a\nboards:\n  a: {host: x, groups: line1}\n"
                               "  b: {host: y}\n"))
    assert inv.boards["a"].groups == ("line1",)
    assert inv.groups == {"line1"}
    assert [b.name for b in inv.select(group="line1")] == ["a"]


def test_a_port_written_as_a_quoted_number_is_a_port(tmp_path):
    assert load(write(tmp_path, "boards:\n  a: {host: x, port: '2222'}\n")).boards["a"].port == 2222


def test_an_inventory_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_bytes(b"boards:\n  a:\n    host: caf\xe9\n")
    with pytest.raises(InventoryError, match=rf"^{path}:3: not UTF-8 text \(byte 0xe9"):
        load(path)


def test_an_inventory_that_is_a_directory_is_an_inventory_error(tmp_path):
    with pytest.raises(InventoryError, match="cannot read the inventory"):
        load(tmp_path)


def test_yaml_nested_thousands_deep_is_an_inventory_error(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text("boards: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InventoryError):
        load(path)


def test_a_missing_retry_file_is_an_inventory_error_not_a_traceback(tmp_path):
    with pytest.raises(InventoryError, match="cannot read the retry file"):
        load(ROOT_EXAMPLE).select(hosts=f"@{tmp_path / 'gone.txt'}")
