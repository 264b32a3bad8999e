"""`inv perf --on-board`: benchmark models on the boards themselves, over SSH only, the whole fleet at once.

Per board (all boards in parallel, bounded by --parallel; nothing on the PC is shared between them):

1. one probe (SoC, runtime, lite2 and its Python, NPU device nodes and the login user's groups, and with
   --name the deployed model); the refusals below are decided from it before anything is sent;
2. a model given as a file is streamed into a private `mktemp -d` directory on the board (sha256 checked
   there); a deployed one (--name) is used in place, `<model-dir>/<name>/current.rknn`;
3. the board-side script rkdeploy/board/onboard_bench.py goes over the SSH channel's stdin to the board's
   Python (`python3 -`, or the inventory's `python:`), its parameters as one JSON argument quoted by
   remote.script; it drives the board's own rknn-toolkit-lite2 and librknnrt;
4. the temporary directory is removed by the same command (a shell trap, also when the benchmark fails) and,
   should that command not have run to its end, by one more command from here.

Governors stay as they are unless fix_freq: then they are read first (perf.read_governors), set to
`performance`, and written back afterwards (perf.restore_governors), as `inv perf` does.
"""
from __future__ import annotations

import dataclasses
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import remote
from .deploy import HASH_FILE, board_model_dir, validate
from .facts import BoardFacts
from .fleet import FAILED, OK, BoardResult
from .session import BoardSession
from .gather import gather_facts
from .perf import read_governors, restore_governors
from .rknn_model import ModelError, RknnModel, read_model
from .socs import family_of

BENCH = Path(__file__).parent / "board" / "onboard_bench.py"
MARKER = "RKDEPLOY-BENCH-RESULT "
CORE_MASKS = {"rk3588": ("0", "0_1", "0_1_2", "auto"), "rk3576": ("0", "0_1", "auto")}
BUSY = re.compile(r"busy|failed to submit|EBUSY|timeout", re.I)


def core_masks(soc: str | None) -> tuple[str, ...]:
    """The NPU core masks worth measuring on a SoC: every combination lite2 accepts there (its
    init_runtime(core_mask=…) takes NPU_CORE_* only on RK3588 and RK3576; elsewhere only AUTO)."""
    if not soc:
        return ("auto",)
    family = family_of(soc)[0]
    return CORE_MASKS.get(family, ("auto",))


@dataclass
class OnboardRun:
    board: str
    model: str
    core_mask: str = ""
    threads: int = 0
    ok: bool = False
    stage: str = ""
    error: str = ""
    runs: int = 0
    latency_ms: dict | None = None         # p50, p90, p99, mean, min, max of wall-clock inference() latency
    npu_time_ms: dict | None = None        # the runtime's own per-run time (rknn_query PERF_RUN), same keys
    throughput: float | None = None        # inferences per second across all threads
    raw_path: str = ""
    diagnoses: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "diagnoses"} | {
            "diagnoses": [d.__dict__ for d in self.diagnoses]}


class Refused(Exception):
    pass


def refusals(model: RknnModel, facts: BoardFacts, board_name: str, pushed: bool = True) -> list[str]:
    """Why the benchmark cannot run on this board, each with its fix, before anything is sent."""
    problems = []
    if facts.lite2 is None:
        problems.append(f"rknn-toolkit-lite2 is not installed for the board's Python ({facts.python or 'none found'}): "
                        f"inv provision --host {board_name} --bundle <release> installs it (or set the inventory's "
                        f"`python:` to the venv that has it)")
    # SoC family, runtime present and not older than the model (deploy's checks and words; nothing is written
    # to the model directory, so its free space does not matter here)
    problems += validate(model, dataclasses.replace(facts, model_dir_free_kb=None))
    tmp_free = facts.disk_free_kb.get("/tmp")
    if pushed and tmp_free is not None and tmp_free < model.size // 1024 + 1024:
        problems.append(f"not enough space in /tmp on the board for the model: {tmp_free // 1024} MiB free, it "
                        f"needs {model.size // 1024 // 1024 + 1} MiB")
    if not facts.npu_nodes:
        problems.append("no NPU device node on the board (/dev/rknpu or /dev/dri/renderD*): the runtime would say "
                        "'failed to open rknpu module'; is the RKNPU driver loaded (dmesg | grep -i rknpu)?")
    elif facts.sudo != "root" and facts.user != "root":
        usable = [n for n in facts.npu_nodes if n.group in facts.user_groups or n.mode[-1:] in ("6", "7")]
        if not usable:
            groups = sorted({n.group for n in facts.npu_nodes})
            problems.append(f"user {facts.user} may not open {', '.join(n.path for n in facts.npu_nodes)} (group "
                            f"{'/'.join(groups)}, mode {facts.npu_nodes[0].mode}): sudo usermod -aG {groups[0]} "
                            f"{facts.user}, then log in again")
    return problems


_PUSH = f"""set -e
umask 077
d=$(mktemp -d "${{TMPDIR:-/tmp}}/rkdeploy-bench.XXXXXXXX")
trap 'rm -rf -- "$d"' EXIT
t="$d/model.rknn"
cat > "$t"
set -- $({HASH_FILE})
[ "$1" = "$sha256" ] || {{ echo "the model did not arrive intact (its sha256 differs)" >&2; exit 3; }}
trap - EXIT
printf 'dir=%s\\n' "$d"
"""
# The benchmark: the script on stdin, its parameters as one argument. `$dir` (if any) is removed afterwards,
# whatever the benchmark's outcome, and on a hangup or termination too.
_RUN = """cleanup() { [ -z "$dir" ] || rm -rf -- "$dir"; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
"$py" - "$params"
"""
_CLEANUP = """case "$dir" in */rkdeploy-bench.*) rm -rf -- "$dir";; esac
"""
_PERFORMANCE = """printf '%s\\n' "$paths" | while IFS= read -r f; do echo performance > "$f" 2>/dev/null || true; done
"""
_TMPDIR = re.compile(r"/[^\n\0]*/rkdeploy-bench\.[A-Za-z0-9]{8}")


def push_script(sha256: str) -> str:
    return remote.script(_PUSH, sha256=remote.sha256(sha256))


def run_script(python: str, params: dict, tmpdir: str = "") -> str:
    return remote.script(_RUN, py=python, params=json.dumps(params, separators=(",", ":")), dir=tmpdir)


def cleanup_script(tmpdir: str) -> str:
    return remote.script(_CLEANUP, dir=tmpdir)


def input_specs(model: RknnModel) -> list[dict]:
    return [{"shape": list(t.shape), "dtype": t.dtype, "layout": t.layout, "layout_ori": t.layout_ori}
            for t in model.input_tensors]


def classify(text: str) -> str:
    """A short cause for what the board's runtime said, with the fix, or ''."""
    for line in text.splitlines():
        if line.startswith("E ") and BUSY.search(line):
            return (f"the NPU is busy: another process holds it ({line.strip()[:400]}); find it with "
                    f"`sudo fuser -v /dev/dri/renderD* /dev/rknpu` and stop it, or run again later")
    return ""


def onboard_job(models: list[RknnModel] | None, *, name: str | None, model_dir: str | None, threads: list[int],
                warmup: int, runs: int, duration: float, fix_freq: bool, timeout: float, raw_dir: Path):
    """A fleet job: the on-board benchmark of each model (or of the deployed model `name`) on one board."""
    def job(session: BoardSession) -> BoardResult:
        board = session.board
        where = board_model_dir(board, model_dir) if name else None
        facts = gather_facts(session, model_dir=where)
        targets: list[tuple[RknnModel, str | None]] = []
        if name:
            try:
                targets.append((_fetch_deployed(session, facts, where, name), f"{where}/{name}/current.rknn"))
            except Refused as e:
                return _failed(board.name, name, "preflight", str(e))
        else:
            targets = [(m, None) for m in models or []]
        out: list[OnboardRun] = []
        problems = {m.path: refusals(m, facts, board.name, pushed=p is None) for m, p in targets}
        runnable = [(m, p) for m, p in targets if not problems[m.path]]
        for m, _ in targets:
            if problems[m.path]:
                out.append(OnboardRun(board.name, _label(m, name), stage="preflight", error="; ".join(problems[m.path])))
        saved = read_governors(session) if fix_freq and runnable else {}
        try:
            if saved:
                session.run_as_root(remote.script(_PERFORMANCE, paths="\n".join(saved)))
            for model, on_board in runnable:
                out.extend(_bench(session, model, on_board, facts, name, threads=threads, warmup=warmup, runs=runs,
                                  duration=duration, timeout=timeout, raw_dir=raw_dir))
        finally:
            restore_governors(session, saved)
        ok = bool(out) and all(r.ok for r in out)
        errors = sorted({f"{r.model}: {r.error}" for r in out if not r.ok})
        return BoardResult(board.name, OK if ok else FAILED, data=out, error="; ".join(errors))
    return job


def _label(model: RknnModel, name: str | None) -> str:
    return name if name else model.path.rsplit("/", 1)[-1]


def _failed(board: str, model: str, stage: str, error: str) -> BoardResult:
    return BoardResult(board, FAILED, data=[OnboardRun(board, model, stage=stage, error=error)], error=error)


def _fetch_deployed(session: BoardSession, facts: BoardFacts, where: str, name: str) -> RknnModel:
    """The deployed model's metadata: its file read over SFTP (no shell) into a PC temporary file."""
    if name not in facts.models_current:
        raise Refused(f"no model {name!r} deployed under {where} on this board (inv deploy MODEL --name {name})")
    with tempfile.TemporaryDirectory(prefix="rkdeploy-bench-") as tmp:
        local = Path(tmp) / "current.rknn"
        try:
            session.conn.sftp().get(f"{where}/{name}/current.rknn", str(local))
            model = read_model(local)
        except (OSError, ModelError) as e:
            raise Refused(f"{where}/{name}/current.rknn could not be read: {e}") from None
    return model


def _bench(session, model: RknnModel, on_board: str | None, facts: BoardFacts, name, *, threads, warmup, runs,
           duration, timeout, raw_dir: Path) -> list[OnboardRun]:
    board = session.board
    label = _label(model, name)
    tmpdir = ""
    finished = False
    try:
        if on_board is None:
            pushed = session.send_file(model.path, push_script(model.sha256))
            if pushed.return_code != 0:
                return [OnboardRun(board.name, label, stage="push", error=pushed.stderr.strip()
                                   or f"sending the model failed (exit {pushed.return_code})")]
            found = re.search(r"^dir=(.*)$", pushed.stdout, re.M)
            tmpdir = found.group(1).strip() if found else ""
            if not _TMPDIR.fullmatch(tmpdir):
                return [OnboardRun(board.name, label, stage="push", error=f"unexpected answer {pushed.stdout!r}")]
            on_board = f"{tmpdir}/model.rknn"
        params = {"model": on_board, "core_masks": list(core_masks(facts.soc)), "threads": threads,
                  "warmup": warmup, "runs": runs, "duration": duration, "inputs": input_specs(model)}
        started = time.monotonic()
        result = session.run(run_script(board.python, params, tmpdir), stdin=BENCH.read_text(), timeout=timeout)
        finished = True
    finally:
        if tmpdir and not finished:
            try:
                session.run(cleanup_script(tmpdir), timeout=30)
            except Exception:        # the link is gone: the board's own trap removes it when the shell ends
                pass
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw = raw_dir / f"{board.name}-{label}.onboard.log"
    raw.write_text(f"# board {board.name}, model {label} ({on_board}), {time.monotonic() - started:.1f} s, "
                   f"exit {result.return_code}\n# parameters: {json.dumps(params)}\n---- stdout ----\n"
                   f"{result.stdout}\n---- stderr ----\n{result.stderr}\n")
    doc = None
    for line in result.stdout.splitlines():
        if line.startswith(MARKER):
            try:
                doc = json.loads(line[len(MARKER):])
            except ValueError:
                doc = None
    said = classify(result.stdout + "\n" + result.stderr)
    if doc is None:
        err = said or _last_error(result.stderr) or f"the board's benchmark ended without a result (exit {result.return_code})"
        return [OnboardRun(board.name, label, stage="bench", error=err, raw_path=str(raw))]
    if doc.get("stage") == "import":
        return [OnboardRun(board.name, label, stage="import", raw_path=str(raw),
                           error=f"rknn-toolkit-lite2 does not import in {board.python} on the board: {doc.get('error')}"
                                 f" (inv provision --host {board.name})")]
    out = []
    for r in doc.get("results", []):
        run = OnboardRun(board.name, label, core_mask=r.get("core_mask", ""), threads=int(r.get("threads") or 0),
                         ok=bool(r.get("ok")), stage=r.get("stage", ""), error=r.get("error") or "",
                         runs=int(r.get("runs") or 0), latency_ms=r.get("latency_ms"),
                         npu_time_ms=r.get("npu_time_ms"), throughput=r.get("throughput"), raw_path=str(raw))
        if not run.ok:
            run.error = said or (f"{run.stage}: {run.error}" + (f" ({_last_error(result.stdout + result.stderr)})"
                                                                if _last_error(result.stdout + result.stderr) else ""))
        out.append(run)
    return out


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.startswith("E ") and "Traceback" not in ln]
    return lines[-1][:300] if lines else ""
