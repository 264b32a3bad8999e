"""`inv deploy`: validate a model against each board, then push it atomically, keeping earlier versions.

Board layout, under the model directory (default /opt/rkdeploy/models):

    <name>/versions/<sha12>.rknn    every kept version, named by its content
    <name>/versions/<sha12>.json    what it is and when it was deployed
    <name>/current.rknn             symlink to the active version: the stable path for applications

A version is uploaded to a hidden temporary file next to where it will live,
its sha256 is checked on the board, and only then is it renamed into place and
`current.rknn` switched with a rename: an application never sees a partial model.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
import re
import secrets
import socket
from dataclasses import dataclass, field

from .gather import gather_facts
from .probe import parse_probe, probe_script
from .facts import BoardFacts
from .fleet import CHANGED, FAILED, OK, BoardResult
from . import remote
from .lock import HELD_CHECK, LOCK_LOST_EXIT, BoardLock, LockLost, held_params, lock_command, new_token
from .convert import recipe_for_deploy
from .rknn_model import RknnModel
from .session import BoardSession, root_advice
from .socs import runs_on, socs_for
from .versions import release_of

DEFAULT_MODEL_DIR = "/opt/rkdeploy/models"
SPACE_MARGIN_KB = 1024


class DeployError(RuntimeError):
    pass


@dataclass
class DeployPlan:
    board: str
    name: str
    sha12: str
    action: str                       # "upload", "activate", "none" or "refused"
    problems: list[str] = field(default_factory=list)
    forced: bool = False
    prepare: bool = False             # the model's directory does not exist yet
    prepare_root: bool = False        # ... and the login user cannot make the model directory: root makes it
    prune: list[str] = field(default_factory=list)
    bytes: int = 0

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def board_model_dir(board, model_dir: str | None) -> str:
    """--model-dir, else the board's `model_dir` var, else the default; an absolute path without '..'."""
    if model_dir:
        what = "--model-dir"
    elif board.vars.get("model_dir"):
        what, model_dir = f"the inventory's model_dir of {board.name}", board.vars["model_dir"]
    else:
        what, model_dir = "model directory", DEFAULT_MODEL_DIR
    try:
        return remote.model_dir(model_dir, what)
    except remote.RemoteValueError as e:
        raise DeployError(str(e)) from None


def model_name(model: RknnModel, name: str | None) -> str:
    value = name if name is not None else re.sub(r"\.rknn\Z", "", model.path.rsplit("/", 1)[-1])
    try:
        return remote.model_name(value)
    except remote.RemoteValueError as e:
        raise DeployError(f"{e} (pass --name)") from None


def model_state(facts: BoardFacts, name: str, model_dir: str) -> tuple[str, list[dict]]:
    """The model's active version (sha12, "" if none) and its kept versions (oldest first), from what the board
    said: every value checked before it is used, a bad one named with the board's file it came from."""
    current = facts.models_current.get(name, "")
    active = current.removeprefix("versions/").removesuffix(".rknn")
    if current and (current != f"versions/{active}.rknn" or not _is_sha12(active)):
        raise DeployError(f"{model_dir}/{name}/current.rknn on the board points to {current!r}, not to "
                          "versions/<12 hex digits>.rknn: not touching it (fix or remove that link)")
    versions = sorted((v for v in facts.model_versions if isinstance(v, dict) and v.get("name") == name),
                      key=lambda v: str(v.get("deployed_at", "")))
    for v in versions:
        try:
            remote.sha256(v.get("sha256"), "sha256")
        except remote.RemoteValueError as e:
            raise DeployError(f"a version's metadata in {model_dir}/{name}/versions/*.json on the board is bad: "
                              f"{e}; not using it (fix or remove that file)") from None
    return active, versions


def _is_sha12(value: str) -> bool:
    try:
        remote.sha12(value)
        return True
    except remote.RemoteValueError:
        return False


def validate(model: RknnModel, facts: BoardFacts) -> list[str]:
    """Why this model would not run on this board, in the words the board would use, with the fix."""
    problems = []
    if not facts.soc:
        problems.append("the board's SoC is unknown (no device tree compatible string)")
    elif not runs_on(model.target_platforms, facts.soc):
        problems.append(f"the model is built for {', '.join(socs_for(model.target_platforms))} but the board is {facts.soc}: "
                        f"the runtime would say 'This rknn model is for {model.target_platforms[0]}, but current "
                        f"platform is {facts.soc}'. Rebuild it with target_platform='{facts.soc}'")
    runtime = facts.runtime_version
    model_tk = model.toolkit_release
    if runtime is None:
        problems.append("no librknnrt on the board: run inv provision first")
    elif model_tk and model_tk.release[:3] > runtime.version.release[:3]:
        said = ("'Invalid RKNN model version 6'" if runtime.version <= release_of("1.5.0")
                and model.format_version >= 6 else
                "'RKNN model version is …, but current librknnrt.so is support model version <= …'")
        problems.append(f"the model was built by rknn-toolkit2 {model_tk}, newer than the board's librknnrt "
                        f"{runtime}: loading fails with {said}. Upgrade the board (inv provision --bundle "
                        f"{model_tk}) or rebuild the model with rknn-toolkit2=={runtime}")
    free = facts.model_dir_free_kb
    if free is not None and free < model.size // 1024 + SPACE_MARGIN_KB:
        problems.append(f"not enough space for the model: {free // 1024} MiB free, it needs "
                        f"{model.size // 1024 // 1024 + 1} MiB")
    return problems


def plan_deploy(model: RknnModel, name: str, facts: BoardFacts, board: str, keep: int, force: bool,
                model_dir: str = DEFAULT_MODEL_DIR) -> DeployPlan:
    """What to do on one board. DeployError if what the board said about the model cannot be trusted."""
    sha12 = model.sha256[:12]
    plan = DeployPlan(board=board, name=name, sha12=sha12, action="none")
    active, versions = model_state(facts, name, model_dir)
    kept = {v["sha256"][:12] for v in versions}
    if active == sha12:
        return plan                                  # already active: nothing to send
    plan.problems = validate(model, facts)
    if plan.problems and not force:
        plan.action = "refused"
        return plan
    plan.forced = bool(plan.problems)
    plan.prepare = not versions and name not in facts.models_current
    plan.prepare_root = plan.prepare and facts.model_dir_state != "writable" and not facts.model_dir_parent_writable
    plan.action = "activate" if sha12 in kept else "upload"
    plan.bytes = model.size if plan.action == "upload" else 0
    older = [v["sha256"][:12] for v in versions if v["sha256"][:12] != sha12]
    plan.prune = older[:max(0, len(older) - (keep - 1))]
    return plan


def _metadata(model: RknnModel, name: str) -> str:
    return json.dumps({
        "name": name, "sha256": model.sha256, "size": model.size, "toolkit": model.toolkit_version,
        "platforms": list(model.target_platforms), "format": model.format_version,
        "source": model.path.rsplit("/", 1)[-1],
        "deployed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "deployed_by": f"{getpass.getuser()}@{socket.gethostname()}",
        "recipe": recipe_for_deploy(model.path, model.sha256),        # `inv convert`'s sidecar, when it made this file
    }, sort_keys=True)


# Hash with OpenSSL when the board has it: it uses the CPU's SHA instructions, coreutils' sha256sum
# does not (several times slower on a board's small cores). Either prints the digest as its first word.
HASH_FILE = 'if command -v openssl > /dev/null 2>&1; then openssl dgst -sha256 -r "$t"; else sha256sum "$t"; fi'
CORRUPT_EXIT, WRITE_FAILED_EXIT = 3, 6

# Every script below is a fixed body run by remote.script() under a header of quoted parameters: model_dir,
# name, sha12 (validated), prune (validated sha12s, space separated), and for the steps that rename, the lock's
# (lock.HELD_CHECK: nothing is renamed unless this run's holder still holds the board lock, and it cannot let
# go until the script is done). Few processes: on a slow board each one counts.
_ENTER = """set -e
cd "$model_dir/$name"
"""
_SWITCH = """ln -sfn "versions/$sha12.rknn" .current.tmp
mv -T -f .current.tmp current.rknn
set --
for old in $prune; do [ "$old" = "$sha12" ] || set -- "$@" "versions/$old.rknn" "versions/$old.json"; done
for f in versions/.*.part-*; do [ -e "$f" ] && set -- "$@" "$f"; done
[ $# = 0 ] || rm -f -- "$@"
"""
_ACTIVATE = (_ENTER + """[ -f "versions/$sha12.rknn" ] || { echo "version $sha12 is not on the board" >&2; exit 4; }
""" + HELD_CHECK + _SWITCH)
_RECEIVE = (_ENTER + f"""umask 022
t="versions/.$sha12.rknn.part-$part"
rkl_trap='rm -f "$t"; '
trap "$rkl_trap" EXIT
cat > "$t" || {{ echo "writing the model on the board failed" >&2; exit {WRITE_FAILED_EXIT}; }}
set -- $({HASH_FILE})
[ "$1" = "$sha256" ] || {{ echo "the upload did not arrive intact (its sha256 differs)" >&2; exit {CORRUPT_EXIT}; }}
""" + HELD_CHECK + f"""mv -f "$t" "versions/$sha12.rknn"
printf '%s\\n' "$meta" > "versions/$sha12.json" || {{ rm -f "versions/$sha12.rknn" "versions/$sha12.json"; exit {WRITE_FAILED_EXIT}; }}
""" + _SWITCH)
# Written after the model (above): a version's metadata never names a file that is not there.
_PREPARE = """[ -w "$model_dir" ] || { mkdir -p "$model_dir" 2>/dev/null && [ -w "$model_dir" ]; } || { echo "cannot create $model_dir as the login user: pass --model-dir to a directory it can write" >&2; exit 5; }
mkdir -p "$model_dir/$name/versions"
"""
# As root (session.run_as_root), when the login user cannot make the model directory: made and given to the
# login user (sudo's SUDO_UID/SUDO_GID; a root login owns it itself).
# mkdir/chown/chmod, not `install -d -o -g -m`: busybox builds may have no install applet (Debian's has none).
_MAKE_MODEL_DIR = """mkdir -p "$model_dir" && chown "${SUDO_UID:-$(id -u)}:${SUDO_GID:-$(id -g)}" "$model_dir" && chmod 0755 "$model_dir"
"""
_PROBE_DONE = """[ "$RKD_CURRENT" = "versions/$rkd_sha12.rknn" ] && exit 0
"""


def _params(model_dir: str, name: str, sha12: str, prune: list[str] = (), token: str | None = None) -> dict:
    params = {"model_dir": remote.model_dir(model_dir), "name": remote.model_name(name),
              "sha12": remote.sha12(sha12), "prune": " ".join(remote.sha12(p) for p in prune if p != sha12)}
    return params | (held_params(token) if token is not None else {})


def activate_script(model_dir: str, name: str, sha12: str, prune: list[str], *, lock_token: str) -> str:
    """Run under the board lock: switch current.rknn to a kept version with a rename, then remove the pruned
    versions (never the one just made active) and what interrupted uploads left."""
    return remote.script(_ACTIVATE, **_params(model_dir, name, sha12, prune, lock_token))


def receive_script(model_dir: str, name: str, sha256: str, metadata: str, prune: list[str], *,
                   prepare: bool, lock_token: str) -> str:
    """One remote command, run under the board lock, with the model on its stdin: write it to a hidden
    temporary file, check its sha256 (which also catches a short file), rename it into versions/ next to
    its metadata and activate it. Anything short of that removes the temporary file and leaves the active
    model as it was: exit 6 if the board could not write it (cat's own message, e.g. "No space left on
    device", is on stderr), 3 if what arrived is not the model, lock.LOCK_LOST_EXIT if the lock was lost."""
    sha256 = remote.sha256(sha256)
    params = _params(model_dir, name, sha256[:12], prune, lock_token)
    body = (_PREPARE if prepare else "") + _RECEIVE
    return remote.script(body, **params, sha256=sha256, meta=metadata, part=secrets.token_hex(4))


def make_model_dir_script(model_dir: str) -> str:
    """As root: the model directory, owned by the login user."""
    return remote.script(_MAKE_MODEL_DIR, model_dir=remote.model_dir(model_dir))


def prepare_script(model_dir: str, name: str) -> str:
    """Make <model_dir>/<name>/versions as the login user (make_model_dir_script first where it cannot)."""
    return remote.script(_PREPARE, model_dir=remote.model_dir(model_dir), name=remote.model_name(name))


def probe_and_lock_script(model_dir: str, name: str, sha12: str, wait: float, lock_token: str) -> str:
    """The light probe, then, unless the model's active version already is sha12 (nothing to do, no lock),
    the board lock on the same channel: a rollout costs one round trip less, a re-deploy no lock at all.
    The probe's model section leaves the model's current link target in RKD_CURRENT."""
    return (remote.script("RKD_CURRENT=\n", RKD_MODEL=remote.model_name(name), rkd_sha12=remote.sha12(sha12))
            + probe_script(model_dir=remote.model_dir(model_dir), system=False)
            + _PROBE_DONE + lock_command(wait, lock_token))


def _probe_and_lock(session: BoardSession, model_dir: str, name: str, sha12: str,
                    wait: float) -> tuple[BoardFacts, BoardLock]:
    """Facts as soon as the probe's last line arrives; the lock (not yet waited for) on the same channel."""
    token = new_token()
    script = probe_and_lock_script(model_dir, name, sha12, wait, token)
    session.commands += 1
    channel = session.conn.transport.open_session()
    try:
        channel.settimeout(session.settings.command_timeout)
        channel.exec_command(script)
        reader = channel.makefile("rb")            # bytes: a file name on the board need not be UTF-8
        lines = []
        for line in reader:
            lines.append(line)
            if line.startswith(b"end="):
                break
        facts = parse_probe(b"".join(lines), link_lost=not session.conn.transport.is_active())
    except BaseException:
        channel.close()
        raise
    return facts, BoardLock(session, wait, channel=channel, reader=reader, token=token)


def deploy_job(model: RknnModel, name: str | None, *, model_dir: str | None, keep: int, force: bool,
               check_only: bool, lock_wait: float):
    def job(session: BoardSession) -> BoardResult:
        board = session.board
        where = board_model_dir(board, model_dir)
        final_name = model_name(model, name)
        if check_only:
            facts = gather_facts(session, model_dir=where, system=False)
            return _result(board.name, _root_check(session, facts, where,
                                                   plan_deploy(model, final_name, facts, board.name, keep, force, where)))
        facts, lock = _probe_and_lock(session, where, final_name, model.sha256[:12], lock_wait)
        try:
            plan = _root_check(session, facts, where, plan_deploy(model, final_name, facts, board.name, keep, force,
                                                                  where))
        except BaseException:
            lock.release()
            raise
        if plan.action in ("none", "refused"):
            lock.release()                             # never waited for: the board let it go or never took it
            return _result(board.name, plan)
        # No second probe under the lock: the scripts re-check what matters (the upload's checksum, that the
        # version is there, never pruning the active one), so a run that won the lock first cannot be undone
        # by this one's older view.
        # The lock is checked twice before anything is renamed: here (a stalled PC learns it may have lost it)
        # and by the script on the board (lock.HELD_CHECK), which no stall can race.
        with lock:
            if plan.action == "activate":
                script = activate_script(where, final_name, plan.sha12, plan.prune, lock_token=lock.token)
                lock.ensure_held()
                run_or_raise(session, script)
            else:
                if plan.prepare_root:
                    made = session.run_as_root(make_model_dir_script(where))
                    if made.return_code != 0:
                        raise DeployError(f"cannot create {where} as root: {made.stderr.strip() or made.return_code}")
                script = receive_script(where, final_name, model.sha256, _metadata(model, final_name),
                                        plan.prune, prepare=plan.prepare, lock_token=lock.token)
                lock.ensure_held()
                result = session.send_file(model.path, script)
                if result.return_code == LOCK_LOST_EXIT:
                    raise LockLost(result.stderr.strip())
                if result.return_code != 0:
                    raise DeployError(_upload_failure(result.return_code, result.stderr))
            return _result(board.name, plan)
    return job


def _root_check(session: BoardSession, facts: BoardFacts, where: str, plan: DeployPlan) -> DeployPlan:
    """A plan that needs root for the model directory, on a board where this session cannot become root:
    refused with the advice that fits (the probe said how root is reached; the session now knows it too)."""
    if facts.root_mode:
        session.root_mode = facts.root_mode
    if plan.prepare_root and plan.action in ("upload", "activate"):
        advice = root_advice(facts.root_mode, facts.user,
                             "given" if session.settings.sudo_password is not None else "")
        if advice:
            plan.action = "refused"
            plan.problems.append(f"cannot create {where}: it needs root and {advice}; or pass --model-dir to a "
                                 "directory the login user can write")
    return plan


def _upload_failure(status: int, err: str) -> str:
    err = err.strip()
    if "No space" in err:
        return f"no space left on the board for the model: the active one is untouched ({err})"
    if status in (CORRUPT_EXIT, WRITE_FAILED_EXIT):
        return f"{err}: the active model is untouched"
    return err or f"the upload failed on the board (exit {status}): the active model is untouched"


def run_or_raise(session: BoardSession, script: str):
    """Run a model-directory script; its stderr becomes the DeployError if it fails."""
    result = session.run(script)
    if result.return_code == LOCK_LOST_EXIT:
        raise LockLost(result.stderr.strip())
    if result.return_code != 0:
        raise DeployError(result.stderr.strip() or f"remote step failed ({result.return_code})")
    return result


def _result(board: str, plan: DeployPlan) -> BoardResult:
    if plan.action == "refused":
        return BoardResult(board, FAILED, data=plan, error="refused: " + "; ".join(plan.problems))
    return BoardResult(board, OK if plan.action == "none" else CHANGED, data=plan, bytes_sent=plan.bytes)
