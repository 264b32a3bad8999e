"""`inv report`: the fleet page from saved documents (made by the real code paths: tests/fleet_docs.py)."""
import datetime as dt
import html
import json
import re
import subprocess
import sys
from pathlib import Path

from rkdeploy import fleet_page, history
from tests import fleet_docs as fd
from tests.fleet_docs import facts

ROOT = Path(__file__).resolve().parents[2]


def rkdeploy(*args, env):
    """The rkdeploy command of this checkout (its cwd's package first, whichever checkout the venv installed)."""
    return subprocess.run([sys.executable, "-c", "from rkdeploy.cli import main; main()", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def page_for(tmp_path, *, runs=3, baseline=True, docs_dir=None):
    paths = fd.saved_fleet(docs_dir or tmp_path / "docs")
    if runs:
        fd.saved_history(tmp_path / "state" / "history", runs)
    docs = fleet_page.documents(from_dir=tmp_path / "docs", history_dir=tmp_path / "state" / "history",
                                baseline=paths["baseline"] if baseline else None)
    return fleet_page.build(docs), paths


def row_of(page: str, board: str, table_class: str) -> list[str]:
    table = re.search(rf'<table class="{table_class}">.*?</table>', page, re.S).group(0)
    return re.findall(rf'<tr class="([^"]*)"><th scope="row">{re.escape(board)}</th>(.*?)</tr>', table, re.S)


def test_the_page_has_every_section_with_the_fleets_figures(tmp_path):
    page, _ = page_for(tmp_path)
    for sid, title in (("versions", "Version matrix"), ("models", "Deployed models"), ("performance", "Performance"),
                       ("history", "History")):
        assert f'<section id="{sid}"><h2>{title}</h2>' in page
    assert "cam-01" in page and "cam-02" in page and "rk3588" in page
    assert "<td class=\"bad\" title=\"1.6.0 (0000000 build@2023-12-13T17:40:00)\">1.6.0</td>" in page
    assert html.escape(fd.MISMATCH_REASON) in page and "fix: <code>inv provision --host cam-02 --bundle 2.3.2</code>" in page
    assert "<code>0f1e2d3c4b5a</code>" in page and '<li class="active"' in page and ">2 d<" in page   # models
    assert ">15.5<" in page and ">7.75<" in page and ">0_1_2<" in page                            # perf, on-board


def test_the_mismatch_row_and_its_cells_are_highlighted(tmp_path):
    page, _ = page_for(tmp_path)
    [(cls, cells)] = row_of(page, "cam-02", "matrix")
    assert cls == "status-mismatch"
    assert '<td class="bad"' in cells and '<li class="bad"><span class="short">server 1.6.0 ≠ runtime 2.3.2' in cells
    assert '<td class="warn"' in cells                                   # lite2 missing: a warning
    assert "border-left: 4px solid var(--bad)" in page


def test_regressions_against_the_baseline_are_marked_in_the_table_and_the_chart(tmp_path):
    page, _ = page_for(tmp_path)
    rows = row_of(page, "cam-02", "perf")
    assert [cls for cls, _ in rows] == ["regression"]
    assert "REGRESSION +29.2% (12.0 → 15.5 ms)" in rows[0][1]
    assert "▲ +29.2% (12.0 → 15.5 ms)" in page                            # the chart's note (SVG text)
    assert [cls for cls, _ in row_of(page, "cam-01", "perf")] == ["", ""]   # +4 %: under the threshold
    assert '<span>regressions</span><b class="bad">1</b>' in page
    page, _ = page_for(tmp_path / "nobase", baseline=False)
    assert "REGRESSION" not in page and "pass <code>--baseline perf.json</code>" in page


def test_history_charts_appear_with_two_saved_runs_and_not_with_fewer(tmp_path):
    page, _ = page_for(tmp_path, runs=2)
    assert "Boards per status over the saved check runs" in page and "detector: latency over the saved perf runs" in page
    assert page.count("<svg ") == 4                    # status bars, latency bars, two history charts
    history_dir = tmp_path / "lone"
    docs = fleet_page.documents(fresh={"check": fd.check_doc()}, history_dir=history_dir)
    page = fleet_page.build(docs)
    assert "needs at least two saved check runs" in page and "needs at least two saved perf runs" in page
    assert "over the saved" not in page


def test_the_page_is_self_contained(tmp_path):
    page, _ = page_for(tmp_path)
    assert not re.search(r'(?:src|href)\s*=\s*["\']?\s*(?:https?:)?//', page, re.I)
    assert not re.search(r"<link\b", page, re.I) and not re.search(r"<script\b", page, re.I)
    assert "@import" not in page and "url(http" not in page
    assert "default-src 'none'" in page                                 # nothing may load or run
    assert "prefers-color-scheme: dark" in page and "@media print" in page
    assert "currentColor" in page and "#010203" not in page           # chart text follows the scheme
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))                                     # several charts, no shared id


HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "evil\x1b]52;c;cm0K\x07\x9b2J", "$\\frac{$"]


def test_hostile_values_from_boards_and_models_appear_escaped(tmp_path):
    script, img, escape, math = HOSTILE
    boards = {script: facts("rk3588-mismatch.txt", hostname=img), img: facts("rk3588-field-1.5.0.txt"),
              escape: facts("rk3588-field-1.5.0.txt"), math: facts("rk3588-field-1.5.0.txt")}
    check = fd.check_doc(boards, unreachable={"down": f"refused {script} {escape}"})
    check["boards"][0]["findings"][0]["fix"] = img
    check["toolkit"]["version"] = script
    models = fd.models_doc({script: img, escape: "m"})
    models["boards"][0]["models"][0]["active"] = img
    perf = fd.perf_doc({(script, img): 5.0, (escape, math): 7.0, (math, script): 9.0})
    perf["results"][0]["error"] = escape + img
    for name, doc in (("check.json", check), ("models.json", models), ("perf.json", perf)):
        fd.write(tmp_path / "docs", name, doc)
    fd.saved_history(tmp_path / "state" / "history", 2)
    page = fleet_page.build(fleet_page.documents(from_dir=tmp_path / "docs", history_dir=tmp_path / "state" / "history"))
    assert not re.search(r"<script\b", page, re.I) and not re.search(r"<img\b", page, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "evil?]52;c;cm0K??2J" in page                                # control characters shown as ?
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in page
    assert "$\\frac{$" in page                                          # mathtext off: the label is text
    # every element the page has is one the page itself writes
    tags = set(re.findall(r"<([a-zA-Z][\w:-]*)", page))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "nav", "a", "div",
                    "span", "b", "section", "table", "thead", "tbody", "tr", "th", "td", "ul", "ol", "li", "code",
                    "br", "figure", "footer", "svg", "defs", "g", "path", "use", "text", "clipPath", "rect",
                    "polyline", "line", "pattern", "tspan"}, tags


def test_odd_documents_give_a_page_not_a_traceback(tmp_path):
    docs_dir = tmp_path / "docs"
    fd.write(docs_dir, "check.json", {"task": "check", "boards": [{"board": ["x"], "facts": {"server": 3},
                                                                   "findings": "no"}, 7], "summary": []})
    fd.write(docs_dir, "models.json", {"task": "models.list", "boards": {"a": 1}})
    fd.write(docs_dir, "perf.json", {"task": "perf", "results": [{"board": "b", "model": "m", "time_ms": "12"},
                                                                 {"board": "b", "model": "n", "time_ms": float("nan")}]})
    (docs_dir / "junk.json").write_text("[1, 2")
    (docs_dir / "other.json").write_text('{"no": "task"}')
    page = fleet_page.build(fleet_page.documents(from_dir=docs_dir, history_dir=tmp_path / "none"))
    assert "Version matrix" in page and html.escape("['x']") in page


def test_check_and_perf_save_their_documents_to_the_history(tmp_path):
    when = dt.datetime(2025, 6, 1, 8, 0, 5, 123000, tzinfo=dt.timezone.utc)
    a = history.save(tmp_path, {"task": "check", "x": "\x1b"}, now=when)
    b = history.save(tmp_path, {"task": "check"}, now=when)              # same instant: its own file
    assert a.name == "check-20250601T080005.123000Z.json" and b.name == "check-20250601T080005.123000Z-1.json"
    assert history.saved_at(a) == when and json.loads(a.read_text())["x"] == "\x1b"
    assert [s.doc["task"] for s in fleet_page.read_dir(tmp_path / "history")] == ["check", "check"]
    source = (Path(fleet_page.__file__).parent / "tasks").glob("*.py")
    savers = {p.stem for p in source if "history.save(" in p.read_text()}
    assert savers == {"check", "perf"}


def test_inv_report_from_a_directory_writes_the_page_and_needs_no_board(tmp_path):
    paths = fd.saved_fleet(tmp_path / "docs")
    out = tmp_path / "site" / "fleet.html"
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = rkdeploy("report", "--from", str(tmp_path / "docs"), "--baseline", str(paths["baseline"]), "--out", str(out),
                    env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"Fleet report: {out}" in proc.stdout and "REGRESSION +29.2%" in out.read_text()
    bad = rkdeploy("report", "--from", str(tmp_path / "empty-missing"), env=env)
    assert bad.returncode == 1 and "not a directory" in bad.stderr
    none = rkdeploy("report", "--out", str(out), env=env)
    assert none.returncode == 1 and "--all" in none.stderr
