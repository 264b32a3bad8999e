"""Every toolkit output fixture parsed in full (tests/fixtures/toolkit-output/parsed.json): every layer, ranking row,
frequency, size and generation, not a few chosen values. Written after a mutation run on rkdeploy/perf_parse.py,
where 93 of 447 changes to the parser went unnoticed by the spot checks of test_perf_parse.py.

The expected file was generated from the parser and checked by hand against the logs (the 1.x and 2.x perf
tables, the ANSI-coloured 2.x output, both eval_memory key styles). After a deliberate change to the parser:
`python -m tests.unit.test_perf_parse_snapshot` rewrites it; review the diff."""
import json
import sys

import pytest

from rkdeploy.perf_parse import _float, _int, _size, clean, parse_memory, parse_perf
from tests.conftest import FIXTURES

OUT = FIXTURES / "toolkit-output"
EXPECTED = OUT / "parsed.json"


def parsed(path) -> dict:
    text = path.read_text()
    perf, memory = parse_perf(text), parse_memory(text)
    return {"perf": perf.to_dict() if perf else None, "memory": memory.to_dict() if memory else None}


def all_parsed() -> dict:
    return {p.name: parsed(p) for p in sorted(OUT.glob("*.txt"))}


@pytest.mark.parametrize("name", sorted(json.loads(EXPECTED.read_text())))
def test_each_fixture_parses_exactly_as_recorded(name):
    assert parsed(OUT / name) == json.loads(EXPECTED.read_text())[name]


def test_every_fixture_is_recorded():
    assert sorted(json.loads(EXPECTED.read_text())) == sorted(p.name for p in OUT.glob("*.txt"))


def test_clean_drops_ansi_colours_and_trailing_space_and_keeps_the_indent():
    assert clean("\x1b[31m  ID  OpType \x1b[0m  \nx\t") == ["  ID  OpType", "x"]


@pytest.mark.parametrize("value,expected", [("0", 0), ("42", 42), ("4" * 18, int("4" * 18)), ("4" * 19, None),
                                            ("-1", None), ("1.5", None), ("", None), ("٣", None)])
def test_int_takes_plain_ascii_digits_up_to_the_cap(value, expected):
    assert _int(value) == expected


@pytest.mark.parametrize("value,expected", [("1.5", 1.5), ("2", 2.0), (".5", 0.5), ("5.", 5.0), (".", None),
                                            ("1.2.3", None), ("", None), ("1.2x", None),
                                            ("1" * 19, float("1" * 19)), ("1" * 20, None)])
def test_float_takes_one_decimal_point_and_plain_digits(value, expected):
    assert _float(value) == expected


@pytest.mark.parametrize("value,unit,expected", [("1.5", "KiB", 1536), ("2", "MB", 2 * 1024 * 1024), ("3", "Byte", 3),
                                                 ("1", "GiB", 1024 ** 3), ("7", "parsecs", 7), ("x", "MB", None)])
def test_size_scales_by_the_unit_and_counts_unknown_units_as_bytes(value, unit, expected):
    assert _size(value, unit) == expected


if __name__ == "__main__":
    EXPECTED.write_text(json.dumps(all_parsed(), indent=1, sort_keys=True) + "\n")
    print(EXPECTED, file=sys.stderr)
