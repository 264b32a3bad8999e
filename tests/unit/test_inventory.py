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
    ("boards:\n  a:\n    host: x\n    port: ssh\n", 4, "port must be a number"),
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
