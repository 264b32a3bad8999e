"""Where the tests and the lab find Rockchip's own files (SDK trees, rknn_server builds, example models).

Those files are under Rockchip's RKNN SDK licence and never live in this repository. They are read
from one configurable place: `RKDEPLOY_ROCKCHIP_DIR`, by default `../shared/rockchip` next to the
checkout (the layout is described in docs/rockchip-files.md). Example models that came with the
project's shared notes are looked for beside it, in `../fixtures/models`.

A test that needs one of these files calls `need(path)`: absent, it fails under CI (`CI=true`, where
the files are provided) and is skipped with the reason elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def rockchip_dir() -> Path:
    return Path(os.environ.get("RKDEPLOY_ROCKCHIP_DIR") or REPO.parent / "shared" / "rockchip").expanduser()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(path: Path, what: str = "") -> Path:
    """`path` if it exists; otherwise fail (CI) or skip (elsewhere), naming the setting to fix it."""
    if path.exists():
        return path
    reason = (f"Rockchip's {what or path.name} is not at {path} (set RKDEPLOY_ROCKCHIP_DIR to a folder "
              "laid out as docs/rockchip-files.md describes)")
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def sdk_tree(name: str) -> Path:
    """One SDK tree, e.g. `rknn-toolkit2-v2.3.2` or `rknpu2-v1.4.0`."""
    return rockchip_dir() / "sdk-trees" / name


def sdk_trees() -> list[Path]:
    root = rockchip_dir() / "sdk-trees"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def example_models() -> list[Path]:
    """Every real .rknn file available: Rockchip's examples and the shared toolkit outputs."""
    found = []
    for folder in (rockchip_dir() / "models", rockchip_dir().parent / "fixtures" / "models"):
        if folder.is_dir():
            found.extend(sorted(folder.glob("*.rknn")))
    return found


def example_model(name: str) -> Path:
    for path in example_models():
        if path.name == name:
            return path
    return need(rockchip_dir() / "models" / name, f"example model {name}")
