"""How `inv convert` looks: per target the file, the times, the accuracy against onnxruntime and the toolkit's
per-layer accuracy_analysis. Everything from the toolkit is untrusted text (report.cell / report.clean)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from . import report
from .report import cell


def _f(v, digits=6) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "—"


def render_convert(console: Console, results, onnx: str) -> None:
    def parts():
        table = Table(title=cell(f"Converted {onnx}", multiline=False), title_justify="left")
        for col in ("Target", "Runs on", "Status", "File", "Seconds", "Detail"):
            table.add_column(col, overflow="fold")
        for r in results:
            secs = sum(v for k, v in r.seconds.items() if k != "import")
            table.add_row(cell(r.target), cell(", ".join(r.socs)),
                          report.status_cell("ok" if r.ok else "failed"), cell(r.rknn or "—"),
                          cell(f"{r.wall_seconds:.1f} (toolkit {secs:.1f})"),
                          cell(r.error if not r.ok else (f"recipe: {r.recipe}" if r.recipe else
                                                         "work files: " + ", ".join(r.work_files))))
        yield table
        for r in results:
            if r.accuracy:
                acc = Table(title=cell(f"{r.target}: simulator vs onnxruntime (float), per output", multiline=False),
                            title_justify="left")
                for col in ("Output", "Samples", "Cosine (min)", "Cosine (mean)", "Max |err|", "Mean |err|", "Equal"):
                    acc.add_column(col)
                for a in r.accuracy:
                    acc.add_row(cell(a.get("output")), cell(a.get("samples")), _f(a.get("cosine_min")),
                                _f(a.get("cosine_mean")), _f(a.get("max_abs"), 5), _f(a.get("mean_abs"), 5),
                                _f(a.get("equal"), 4) if a.get("equal") is not None else "—")
                yield acc
            rows = (r.analysis or {}).get("rows") or []
            if rows:
                header = (r.analysis or {}).get("columns") or []
                an = Table(title=cell(f"{r.target}: the toolkit's accuracy_analysis, per layer "
                                      f"({(r.analysis or {}).get('file') or ''})", multiline=False),
                           title_justify="left")
                an.add_column("Op")
                an.add_column("Layer", overflow="fold")
                width = max(len(x.get("values", [])) for x in rows)
                for k in range(width):
                    an.add_column(cell(header[k] if k < len(header) else f"v{k + 1}"))
                for x in rows:
                    vals = list(x.get("values", [])) + [None] * width
                    an.add_row(cell(x.get("op")), cell(x.get("name")), *[_f(v) for v in vals[:width]])
                yield an
            elif r.analysis and r.analysis.get("error"):
                yield cell(f"{r.target}: accuracy_analysis: {r.analysis['error'].strip().splitlines()[-1]}")
            yield cell(f"{r.target}: the toolkit's output: {r.log_path}")

    def fallback():
        for r in results:
            yield (r.target, "ok" if r.ok else "failed", r.rknn or "", r.error)

    report.draw(console, parts, fallback, "the conversion report")


def recipe_rows(recipe: dict) -> list[tuple[str, str]]:
    """models.inspect's lines for a model's recipe sidecar."""
    if recipe.get("error"):
        return [("recipe", f"unreadable: {recipe['error']}")]
    src = recipe.get("source") if isinstance(recipe.get("source"), dict) else {}
    ds = recipe.get("dataset") if isinstance(recipe.get("dataset"), dict) else None
    opts = recipe.get("options") if isinstance(recipe.get("options"), dict) else {}
    rows = [("recipe", "STALE: the model is not the file this recipe made" if recipe.get("stale") else
             "made by rkdeploy convert (sidecar .recipe.json)"),
            ("  source", f"{report.clean(src.get('path'))} sha256 {report.clean(src.get('sha256'))}"),
            ("  dataset", f"{report.clean(ds.get('path'))} sha256 {report.clean(ds.get('sha256'))} "
                          f"({report.clean(ds.get('files'))} files, {report.clean(ds.get('files_sha256'))})"
             if ds else "none (float)"),
            ("  toolkit / target", f"{report.clean(recipe.get('toolkit'))} / {report.clean(recipe.get('target'))}"),
            ("  options", ", ".join(f"{report.clean(k)}={report.clean(v)}" for k, v in sorted(opts.items())
                                    if v not in (None, False, ""))),
            ("  built", f"{report.clean(recipe.get('started_at'))} → {report.clean(recipe.get('finished_at'))} "
                        f"({report.clean(recipe.get('wall_seconds'))} s)")]
    for a in recipe.get("accuracy") or []:
        if isinstance(a, dict):
            rows.append((f"  accuracy {report.clean(a.get('output'))}",
                         f"cosine ≥ {_f(a.get('cosine_min'))}, max |err| {_f(a.get('max_abs'), 5)}"))
    return rows


def render_recipe(console: Console, recipe: dict) -> None:
    rows = recipe_rows(recipe)

    def parts():
        table = Table(show_header=False, title="Recipe", title_justify="left")
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in rows:
            table.add_row(cell(key), cell(value, "bold red" if "STALE" in value else ""))
        yield table

    report.draw(console, parts, lambda: rows, "the recipe")
