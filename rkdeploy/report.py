"""The report layer: the one place where fleet results become tables, a recap, JSON and an exit code.

Everything a report shows that rkdeploy did not write itself is untrusted: board output (probe fields, error
texts, model metadata on a board), an SSH server's messages (its banner arrives before any host key check),
`.rknn` metadata, bundle.yaml fields, the toolkit's output. Such text never reaches the terminal as it is:

* `clean()` makes it inert. Control characters become `?`, so no escape sequence (CSI, OSC 52 clipboard
  writes, window titles, clear screen), no carriage return overwriting a line and no bidi override can act
  on the terminal. See `clean` for the rules.
* Consoles come from `console()`: `markup=False, highlight=False, emoji=False`, so a plain string is printed
  literally (`[link=…]`, `[/x]` are text, never markup, and cannot raise `MarkupError`). Styled output is
  built from `Text` objects (`cell()`), never from markup strings.
* `draw()` renders into a capture first and writes only a finished report: if rich raises for any reason
  (a value of an unexpected type, a bug), nothing half-drawn is written and the report falls back to plain
  lines (cleaned) plus one line naming the failure. The exit code never depends on rendering.
* JSON goes through `print_json()`: `json.dumps` with `ensure_ascii=True`, so ESC is written `\\u001b`, C1
  and every other non-ASCII character `\\uXXXX`.

Exit codes (`exit_code()`, every fleet task): 0 all done; otherwise bit flags 2 = a version mismatch (check),
4 = a board unreachable, 8 = a board failed or was skipped, 16 = a perf regression against --baseline;
1 = bad input (before any board was contacted).
"""
from __future__ import annotations

import json
import re
import sys
from typing import Any, Callable, Iterable, Sequence

from invoke import Exit
from rich.console import Console, RenderableType
from rich.text import Text

from .fleet import CHANGED, FAILED, OK, SKIPPED, UNREACHABLE, BoardResult, FleetRun

MISMATCH = "mismatch"
STATUSES = (OK, CHANGED, MISMATCH, FAILED, UNREACHABLE, SKIPPED)      # the recap's order
STATUS_STYLE = {OK: "green", CHANGED: "yellow", MISMATCH: "red", FAILED: "red", UNREACHABLE: "magenta",
                SKIPPED: "yellow"}
EXIT_OK, EXIT_USAGE, EXIT_MISMATCH, EXIT_UNREACHABLE, EXIT_FAILED, EXIT_REGRESSION = 0, 1, 2, 4, 8, 16
_EXIT_BITS = {MISMATCH: EXIT_MISMATCH, UNREACHABLE: EXIT_UNREACHABLE, FAILED: EXIT_FAILED, SKIPPED: EXIT_FAILED}

StatusOf = Callable[[BoardResult], str]

# C0 controls except TAB and LF, DEL, C1 controls; the Unicode line/paragraph separators; the bidi marks,
# embeddings, overrides and isolates (they reorder what the operator reads); lone surrogates (from
# surrogate-escaped file names: they make every encoder raise).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_MULTILINE = re.compile(f"[{_UNSAFE}]")
_UNSAFE_LINE = re.compile(f"[\t\n{_UNSAFE}]")


PLACEHOLDER = "?"


def clean(value: Any, *, multiline: bool = False) -> str:
    """Untrusted text made safe to print: every unsafe character becomes one `?` (as `ls` shows odd file names,
    and as `models.inspect` did). Unsafe: C0 controls (ESC, BEL, CR, NUL, …), DEL, C1 controls (U+0080–U+009F,
    e.g. the one-byte CSI U+009B), U+2028/U+2029, bidi controls (U+200E/F, U+202A–E, U+2066–9) and lone
    surrogates. So an escape sequence loses its ESC (or CSI) and shows as text: OSC 52 `\x1b]52;c;…\x07` is
    printed `?]52;c;…?`, clear screen `?[2J`. `multiline=True` (table cells, error texts) keeps LF and TAB and
    reads CRLF as LF; otherwise they are `?` too, so a value cannot forge a line of its own. U+FFFD (bytes that
    were not UTF-8) stays. A value that is not a string is shown as `str()` of it (bytes decoded as UTF-8 with
    replacement); None as ''. Never raises. The exact characters are kept in `--json` (escaped by json)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:  # noqa: BLE001 - a value whose __str__ raises is still reported
            value = f"<{type(value).__name__}>"
    if multiline:
        return _UNSAFE_MULTILINE.sub(PLACEHOLDER, value.replace("\r\n", "\n"))
    return _UNSAFE_LINE.sub(PLACEHOLDER, value)


def cell(value: Any, style: str = "", *, multiline: bool = True) -> Text:
    """A table cell or a line as rich `Text` (never markup): `clean`ed, with one style. A `Text` built
    elsewhere keeps its styles when its plain text is already clean, else it is rebuilt from the cleaned text."""
    if isinstance(value, Text):
        if clean(value.plain, multiline=multiline) == value.plain:
            return value
        return Text(clean(value.plain, multiline=multiline), style=style or value.style)
    return Text(clean(value, multiline=multiline), style=style)


def status_cell(status: str, shown: str | None = None) -> Text:
    """A board's status in its colour (`shown`: another word for it, e.g. "would change")."""
    return Text(clean(shown or status), style=STATUS_STYLE.get(status, ""))


def console(*, stderr: bool = False, file=None, width: int | None = None) -> Console:
    """A console for anything that can contain remote text: no markup, no highlighting, no emoji codes.
    Not a terminal: 140 columns (as before), so piped reports do not wrap at 80."""
    if width is None and file is None:
        stream = sys.stderr if stderr else sys.stdout
        width = None if stream.isatty() else 140
    return Console(stderr=stderr, file=file, width=width, markup=False, highlight=False, emoji=False)


# --- exit codes, recap, retry file ---------------------------------------------------------------------------

def _status(result: BoardResult) -> str:
    return result.status


def exit_code(run: FleetRun, status_of: StatusOf | None = None, *, regressed: bool = False) -> int:
    """The exit code of every fleet task: bit flags 2 mismatch, 4 unreachable, 8 failed or skipped,
    16 regression (perf --baseline). `status_of` gives a board's status where the task refines it (check:
    ok → mismatch)."""
    status_of = status_of or _status
    code = 0
    for r in run.results:
        code |= _EXIT_BITS.get(status_of(r), 0)
    return code | (EXIT_REGRESSION if regressed else 0)


def counts(run: FleetRun, status_of: StatusOf | None = None) -> dict[str, int]:
    """Boards per status: every status of `STATUSES`, 0 where none."""
    status_of = status_of or _status
    found = dict.fromkeys(STATUSES, 0)
    for r in run.results:
        s = status_of(r)
        found[s] = found.get(s, 0) + 1
    return found


FLEET_RECAP = (OK, CHANGED, FAILED, UNREACHABLE, SKIPPED)      # shown even at 0 (deploy, provision, models, perf)
CHECK_RECAP = (OK, MISMATCH, UNREACHABLE)                         # check: failed/skipped only when there are some


def recap_lines(run: FleetRun, status_of: StatusOf | None = None, always: Sequence[str] = FLEET_RECAP) -> list[Text]:
    """`Recap: ok=1  changed=2  …` and, when the run wrote one, `Boards to retry: --host @FILE`."""
    shown = [Text(f"{clean(status)}={n}", style=STATUS_STYLE.get(status, "") if n else "dim")
             for status, n in counts(run, status_of).items() if n or status in always]
    line = Text("Recap: ") + Text("  ").join(shown)
    lines = [line]
    if run.retry_file:
        # never wrapped: the line is copied into the next command
        lines.append(Text(f"Boards to retry: --host @{clean(run.retry_file)}", no_wrap=True, overflow="ignore"))
    return lines


def board_lines(run: FleetRun, status_of: StatusOf | None = None) -> list[tuple[str, ...]]:
    """The plain fallback of a fleet table: board, status, error (what matters when the table cannot be drawn)."""
    status_of = status_of or _status
    return [(r.board, status_of(r), r.error) for r in run.results]


# --- drawing ------------------------------------------------------------------------------------------------

def _write(out: Console, text: str) -> None:
    """Write finished text to the console's stream; a stream that cannot encode it (LANG=C) gets '?' instead."""
    stream = out.file
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, errors="replace").decode(encoding))
    try:
        stream.flush()
    except (OSError, ValueError):
        pass


def draw(out: Console, parts: Callable[[], Iterable[RenderableType]],
         fallback: Callable[[], Iterable[Sequence[Any]]], what: str = "the table") -> bool:
    """Print what `parts()` yields, all or nothing: rendered into a capture first, then written at once. If
    building or rendering raises (anything), the plain lines of `fallback()` (cleaned, two spaces between
    fields) are written instead, after one line that says what could not be drawn and why. True if drawn."""
    try:
        with out.capture() as captured:
            for part in parts():
                out.print(part, soft_wrap=isinstance(part, Text) and bool(part.no_wrap))   # no_wrap: one line
        _write(out, captured.get())
        return True
    except Exception as e:  # noqa: BLE001 - a render failure must never lose the report
        reason = clean(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
    lines = [f"rkdeploy: {what} could not be drawn ({reason}); the report as plain lines:"]
    try:
        for row in fallback():
            fields = [clean(f, multiline=True).replace("\n", "\n    ") for f in row]
            lines.append("  ".join(f if f else "-" for f in fields))
    except Exception as e:  # noqa: BLE001
        lines.append(clean(f"(the plain lines failed too: {type(e).__name__}: {e})"))
    _write(out, "\n".join(lines) + "\n")
    return False


def recap(out: Console, run: FleetRun, status_of: StatusOf | None = None,
          always: Sequence[str] = FLEET_RECAP) -> None:
    """The recap and the retry-file line, for every fleet task."""
    lines = recap_lines(run, status_of, always)
    draw(out, lambda: lines, lambda: [(t.plain,) for t in lines], "the recap")


def fleet_report(out: Console, run: FleetRun, parts: Callable[[], Iterable[RenderableType]], *,
                 status_of: StatusOf | None = None, always: Sequence[str] = FLEET_RECAP,
                 fallback: Callable[[], Iterable[Sequence[Any]]] | None = None, what: str = "the table") -> None:
    """A fleet task's human report: its table (and notes), then the recap and retry line, whatever happens."""
    draw(out, parts, fallback or (lambda: board_lines(run, status_of)), what)
    recap(out, run, status_of, always)


# --- JSON ---------------------------------------------------------------------------------------------------

def envelope(task: str, body: dict, run: FleetRun | None = None, *, status_of: StatusOf | None = None,
             code: int | None = None) -> dict:
    """A task's JSON document: `task` first, then the task's own keys, then the common ones: `exit_code`
    (always), and for fleet tasks `recap` (boards per status) and `retry_file` (path or null)."""
    doc = {"task": task, **body}
    if run is not None:
        doc["exit_code"] = exit_code(run, status_of) if code is None else code
        doc["recap"] = counts(run, status_of)
        doc["retry_file"] = str(run.retry_file) if run.retry_file else None
    else:
        doc["exit_code"] = code or 0
    return doc


def dumps(doc: Any) -> str:
    """JSON text with every control and non-ASCII character escaped by json itself (`\\x1b` → `\\u001b`)."""
    return json.dumps(doc, indent=2, default=str, ensure_ascii=True)


def print_json(doc: Any, run: FleetRun | None = None, file=None) -> None:
    """Print a task's JSON on stdout. A document json cannot encode (a bug: a key that is not a string, a
    cycle) still gives valid JSON: task, exit code, recap and per board status and error, plus the reason."""
    try:
        text = dumps(doc)
    except (TypeError, ValueError, RecursionError) as e:
        minimal = {k: doc.get(k) for k in ("task", "exit_code", "recap", "retry_file") if isinstance(doc, dict)}
        minimal["boards"] = [{"board": r.board, "status": r.status, "error": r.error or None}
                             for r in (run.results if run else [])]
        minimal["report_error"] = f"the full JSON could not be written: {type(e).__name__}: {e}"
        text = dumps(minimal)
    print(text, file=file or sys.stdout)


def finish(code: int) -> None:
    """Leave with the task's exit code (0: return normally)."""
    if code:
        raise Exit(code=code)
