"""rkdeploy.socs: which SoCs share an NPU and so a model (docs/rknn-formats.md, "SoC families")."""
import pytest

from rkdeploy.socs import FAMILIES, KNOWN_SOCS, family_of, runs_on, socs_for


def test_every_family_member_names_its_whole_family_in_rockchips_order():
    assert family_of("rk3566") == ("rk3566", "rk3568") == family_of("rk3568")
    assert family_of("rk3588s") == ("rk3588", "rk3588s")
    assert family_of("RV1103") == ("rv1106", "rv1103")             # names are case-insensitive
    assert family_of("rv1103b") == ("rv1106b", "rv1103b") != family_of("rv1103")
    assert family_of("rk3576") == ("rk3576",) and family_of("rk3562") == ("rk3562",)


def test_an_unknown_soc_is_a_family_of_its_own_in_lower_case():
    assert family_of("RK9999") == ("rk9999",)
    assert runs_on(["rk9999"], "RK9999") and not runs_on(["rk9999"], "rk3588")


def test_known_socs_lists_every_member_once_in_table_order():
    assert KNOWN_SOCS == tuple(s for family in FAMILIES for s in family)
    assert len(set(KNOWN_SOCS)) == len(KNOWN_SOCS)


@pytest.mark.parametrize("platforms,soc,runs", [
    (["rk3566"], "rk3568", True),
    (("rk3568",), "RK3566", True),
    (["rk3588"], "rk3566", False),
    (["rk3588s"], "rk3588", True),
    (["rv1106"], "rv1106b", False),
    (["rk3562", "rk3588"], "rk3588s", True),          # any of the model's platforms will do
    (["rk3562", "rk3576"], "rk3588", False),
    ([], "rk3588", False),
])
def test_a_model_runs_on_every_member_of_a_family_it_names_and_nowhere_else(platforms, soc, runs):
    assert runs_on(platforms, soc) is runs


def test_socs_for_lists_each_soc_once_in_table_order():
    assert socs_for(["rk3568"]) == ["rk3566", "rk3568"]
    assert socs_for(["rk3568", "rk3566", "rk3588s"]) == ["rk3566", "rk3568", "rk3588", "rk3588s"]
    assert socs_for(["RK3576"]) == ["rk3576"]
    assert socs_for([]) == []
