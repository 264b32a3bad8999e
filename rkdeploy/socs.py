"""Which SoCs run which models: the one table deploy, perf and models.inspect consult.

Rockchip builds one model per NPU, not per chip: SoCs that share an NPU share models, and the
toolkit writes one of the family's names into the model (docs/rknn-formats.md, "SoC families").
Rockchip's own example trees show the families (`RK3566_RK3568/`, `RK3588/`, `RV1106_RV1103/`,
`RV1106B_RV1103B/`), and the runtime refuses a model of another family with
`This rknn model is for rk3588, but current platform is rk3566`.
"""
from __future__ import annotations

# Family members in the order Rockchip names the family; a model may carry any of the names.
FAMILIES: tuple[tuple[str, ...], ...] = (
    ("rk3588", "rk3588s"),
    ("rk3576",),
    ("rk3566", "rk3568"),
    ("rk3562",),
    ("rv1106", "rv1103"),
    ("rv1106b", "rv1103b"),
    ("rv1126b",),
)
_FAMILY_OF = {soc: family for family in FAMILIES for soc in family}
KNOWN_SOCS = tuple(_FAMILY_OF)


def family_of(soc: str) -> tuple[str, ...]:
    """The SoCs sharing `soc`'s NPU (itself alone when unknown)."""
    soc = soc.lower()
    return _FAMILY_OF.get(soc, (soc,))


def runs_on(model_platforms: tuple[str, ...] | list[str], soc: str) -> bool:
    """A model built for `model_platforms` loads on a board with `soc`."""
    board_family = family_of(soc)
    return any(family_of(p) == board_family for p in model_platforms)


def socs_for(model_platforms: tuple[str, ...] | list[str]) -> list[str]:
    """Every SoC a model built for `model_platforms` runs on, in table order."""
    out: list[str] = []
    for p in model_platforms:
        out.extend(s for s in family_of(p) if s not in out)
    return out
