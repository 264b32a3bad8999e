"""`inv provision`: make a board run one SDK bundle (runtime, server, scripts, headers, lite2).

plan_provision compares the probe's facts (which already carry the sha256 of
every managed file) with the bundle and lists the steps, or none. apply_plan
streams each changed file as root into a hidden temporary file next to its
target, verifies every checksum, keeps the replaced files for `inv rollback`,
and only then renames into place: a board never holds a partial librknnrt.so
or rknn_server, whatever happens to the link. Then lite2 from the offline
wheelhouse, then rknn_server restarted the way the board runs it.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from .bundle import Bundle, BundleFile, board_arch, libc_mismatch
from .gather import gather_facts
from .facts import BoardFacts
from .fleet import CHANGED, FAILED, OK, BoardResult
from .server import manager_of, persist_script, server_dir_of, server_script
from .session import BoardSession
from .lock import BoardLock
from .remote import script
from .session import root_advice
from .policy import ERROR, SUPPORTED_ARCHES, Target, evaluate
from .versions import same_release

BACKUP_DIR = "/var/lib/rkdeploy/previous"
PIP_MANYLINUX2014 = Version("19.3")      # older pip refuses manylinux2014 wheels


class ProvisionError(RuntimeError):
    pass


@dataclass
class Step:
    kind: str              # "file", "lite2", "pip", "server"
    what: str              # a few words for the plan table
    file: BundleFile | None = None
    wheels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "what": self.what, "bytes": self.file.size if self.file else None}


@dataclass
class ProvisionPlan:
    board: str
    bundle: str
    arch: str = ""
    steps: list[Step] = field(default_factory=list)
    refused: str = ""
    notes: list[str] = field(default_factory=list)
    server_dir: str = "/usr/bin"   # where the bundle puts rknn_server and its scripts (/oem/usr/bin on armhf-uclibc)

    @property
    def bytes(self) -> int:
        return sum(s.file.size for s in self.steps if s.file)

    def to_dict(self) -> dict:
        return {"board": self.board, "bundle": self.bundle, "arch": self.arch, "refused": self.refused or None,
                "server_dir": self.server_dir,
                "steps": [s.to_dict() for s in self.steps], "notes": self.notes, "bytes": self.bytes}




def plan_provision(name: str, facts: BoardFacts, bundle: Bundle, persist: bool = False) -> ProvisionPlan:
    plan = ProvisionPlan(board=name, bundle=bundle.version)
    arch = SUPPORTED_ARCHES.get(facts.arch)
    if arch is None:
        plan.refused = f"architecture {facts.arch or 'unknown'}: Rockchip ships aarch64 and armhf only"
        return plan
    plan.arch = board_arch(arch, facts.soc, facts.libc)    # armhf-uclibc for a uClibc (RV1103/RV1106) board
    mismatch = libc_mismatch(arch, facts.soc, facts.libc)
    if mismatch:
        plan.refused = mismatch
        return plan
    files = bundle.for_arch(arch, facts.soc, facts.libc)   # the SoC family's build where the bundle has several
    missing = bundle.missing_runtime(arch, facts.soc, facts.libc)
    if missing:
        plan.refused = missing
        return plan
    advice = root_advice(facts.root_mode, facts.user, facts.root_password)
    if advice:
        plan.refused = f"installing needs root and {advice}"
        return plan
    changed_binary = False
    for f in files:
        if facts.files.get(f.dest) != f.sha256:
            plan.steps.append(Step("file", f"{f.dest} ({f.role})", file=f))
            changed_binary |= f.role in ("runtime", "server")
        if f.role == "server":
            plan.server_dir = f.dest.rsplit("/", 1)[0]
    _plan_lite2(plan, facts, bundle)
    if facts.server_manager == "systemd" or facts.server_unit:
        manager = "systemd"
    else:
        manager = "start_rknn.sh"
    if persist and not facts.server_unit:
        if facts.systemd:
            plan.steps.append(Step("persist", "install rknn_server.service (systemd: survives reboots)"))
            manager, changed_binary = "systemd", True
        else:
            plan.notes.append("--persist: this board does not run systemd; start_rknn.sh keeps managing rknn_server")
    if changed_binary or not facts.server_running:
        plan.steps.append(Step("server", f"{'restart' if facts.server_running else 'start'} rknn_server ({manager})"))
    return plan


def _plan_lite2(plan: ProvisionPlan, facts: BoardFacts, bundle: Bundle) -> None:
    if plan.arch != "aarch64":
        plan.notes.append("lite2 skipped: " + ("" if facts.python else "no Python on this board, and ")
                          + "Rockchip publishes lite2 for aarch64 only")
        return
    if facts.lite2 and same_release(facts.lite2.release, bundle.version):
        return
    if not facts.python_tag:
        plan.notes.append("no python3 on the board: lite2 skipped")
        return
    wheels = bundle.wheels.get(facts.python_tag)
    if not wheels:
        have = ", ".join(sorted(bundle.wheels)) or "none"
        plan.notes.append(f"bundle {bundle.version} has no lite2 wheel for {facts.python_tag} (has: {have}): "
                          f"re-import it with --python {facts.python_tag} if lite2 exists for that release")
        return
    if any(w.endswith(".tar.gz") for w in wheels) and not (facts.python_h and facts.gcc):
        plan.notes.append("a dependency builds from source and the board lacks Python.h/gcc: "
                          "sudo apt-get install python3-dev gcc")
    pip = Version(facts.pip) if facts.pip and facts.pip[0].isdigit() else None
    if pip is None or pip < PIP_MANYLINUX2014:
        plan.steps.append(Step("pip", f"pip {facts.pip or 'missing'} → the wheelhouse's (manylinux2014 needs ≥19.3)",
                               wheels=[w for w in wheels if w.startswith("pip-")]))
    plan.steps.append(Step("lite2", f"rknn-toolkit-lite2 {facts.lite2 or '—'} → {bundle.version} ({facts.python_tag}, offline)",
                           wheels=[w for w in wheels if not w.startswith("pip-")]))


# -- applying ----------------------------------------------------------------------------------

_UPLOAD = """umask 022
mkdir -p "$folder"
cat > "$tmp" || { rm -f "$tmp"; exit 1; }
"""


def upload_script(remote_tmp: str) -> str:
    """As root, with the file on stdin: write it to `remote_tmp` (its folder made if missing)."""
    return script(_UPLOAD, folder=remote_tmp.rsplit("/", 1)[0] or "/", tmp=remote_tmp)


def _stream_as_root(session: BoardSession, local: Path, remote_tmp: str) -> None:
    """Send a file into a root `cat > tmp` on one channel: root writes it, no staging dir; the payload on the
    channel is the file's bytes and nothing else (session.send_as_root)."""
    result = session.send_as_root(str(local), upload_script(remote_tmp))
    if result.return_code != 0:
        if "No space left" in result.stderr:
            raise ProvisionError(f"no space left on the board for {remote_tmp.rsplit('/', 1)[0]}: the old files "
                                 "are untouched; free some space and rerun")
        raise ProvisionError(f"upload to {remote_tmp} failed: {result.stderr.strip() or result.return_code}")


def install_script(uploads: list[tuple[BundleFile, str]], backup_dir: str = BACKUP_DIR) -> str:
    """As root: verify every temporary file, keep what it replaces, then rename each into place. The body is
    fixed text and file numbers; every path, mode and checksum is a quoted parameter (tmp_N, dest_N, ...)."""
    params: dict[str, str] = {"b": backup_dir}
    tmps = " ".join(f'"$tmp_{i}"' for i in range(len(uploads)))
    lines = ["set -e", 'mkdir -p "$b"', f'fail() {{ echo "$1" >&2; rm -f {tmps}; exit 3; }}']
    for i, (f, tmp) in enumerate(uploads):
        params |= {f"tmp_{i}": tmp, f"dest_{i}": f.dest, f"sha_{i}": f.sha256, f"mode_{i}": f.mode}
        lines.append(f'[ "$(sha256sum < "$tmp_{i}" | cut -d " " -f 1)" = "$sha_{i}" ] || '
                     f'fail "checksum of $dest_{i} wrong after upload"')
    lines.append(': > "$b/manifest.new"')
    for i in range(len(uploads)):
        lines += [f'mkdir -p "$(dirname "$b$dest_{i}")" "$(dirname "$dest_{i}")"',
                  f'if [ -e "$dest_{i}" ]; then cp -p "$dest_{i}" "$b$dest_{i}.tmp" && mv -f "$b$dest_{i}.tmp" "$b$dest_{i}"; '
                  f'echo replaced "$dest_{i}" >> "$b/manifest.new"; else echo added "$dest_{i}" >> "$b/manifest.new"; fi',
                  f'chmod "$mode_{i}" "$tmp_{i}"', f'mv -f "$tmp_{i}" "$dest_{i}"']
    for k, (folder, base) in enumerate(sorted({tuple(f.dest.rsplit("/", 1)) for f, _ in uploads})):
        # leftovers of uploads that a dead link interrupted in an earlier run
        params |= {f"left_dir_{k}": folder, f"left_base_{k}": base}
        lines.append(f'rm -f "$left_dir_{k}/.$left_base_{k}".rkdeploy-*')
    lines.append('mv -f "$b/manifest.new" "$b/manifest"')
    return script("\n".join(lines) + "\n", **params)


_ROLLBACK = """set -e
[ -f "$b/manifest" ] || { echo "nothing to roll back: no earlier provision kept files here" >&2; exit 4; }
while read -r what path; do
  case "$what" in
    replaced) cp -p "$b$path" "$path.rkdeploy-tmp" && mv -f "$path.rkdeploy-tmp" "$path" ;;
    added) rm -f "$path" ;;
  esac
done < "$b/manifest"
mv -f "$b/manifest" "$b/manifest.rolled-back"
"""


def rollback_script(backup_dir: str = BACKUP_DIR) -> str:
    """As root: put back what the last provision replaced and remove what it added."""
    return script(_ROLLBACK, b=backup_dir)


def apply_plan(session: BoardSession, plan: ProvisionPlan, bundle: Bundle, facts: BoardFacts) -> None:
    uploads = []
    for step in plan.steps:
        if step.kind == "file":
            tmp = f"{step.file.dest.rsplit('/', 1)[0]}/.{step.file.dest.rsplit('/', 1)[1]}.rkdeploy-{secrets.token_hex(4)}"
            _stream_as_root(session, bundle.files_dir / step.file.path, tmp)
            uploads.append((step.file, tmp))
    if uploads:
        BoardLock.of(session).ensure_held()        # LockLost (nothing renamed) if the lock may have passed on
        result = session.run_as_root(install_script(uploads))
        if result.return_code != 0:
            raise ProvisionError(result.stderr.strip() or "installing the files failed")
    wheel_steps = [s for s in plan.steps if s.kind in ("pip", "lite2")]
    if wheel_steps:
        _install_wheels(session, wheel_steps, bundle, facts)
    for step in plan.steps:
        if step.kind == "persist":
            result = session.run_as_root(persist_script())
            if result.return_code != 0:
                raise ProvisionError(f"installing rknn_server.service failed: {result.stderr.strip()}")
    for step in plan.steps:
        if step.kind == "server":
            manager = "systemd" if "systemd" in step.what else "start_rknn.sh"
            result = session.run_as_root(server_script(manager, plan.server_dir))
            if result.return_code != 0:
                raise ProvisionError(f"rknn_server: {result.stderr.strip()}")


# pip for one target from the uploaded wheels, offline. Debian 12+ marks its Python externally managed
# (PEP 668); rkdeploy owns what it installs there, so the system Python gets --break-system-packages.
_PIP = """extra=
if [ "$system" = yes ] && "$python" -c 'import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")) else 1)'; then
  extra=--break-system-packages
fi
"$python" -m pip install --no-index --find-links "$wheels" --disable-pip-version-check -q $extra --upgrade "$target"
"""


def pip_script(python: str, wheels: str, target: str, system: bool) -> str:
    return script(_PIP, python=python, wheels=wheels, target=target, system="yes" if system else "no")


def _install_wheels(session: BoardSession, steps: list[Step], bundle: Bundle, facts: BoardFacts) -> None:
    tag = facts.python_tag
    remote = f"/tmp/rkdeploy-wheels-{secrets.token_hex(4)}"
    session.run(script('mkdir -m 700 "$d"\n', d=remote))
    try:
        for step in steps:
            for wheel in step.wheels:
                session.upload(str(bundle.wheelhouse / tag / wheel), f"{remote}/{wheel}")
        system = session.board.python == "python3" or session.board.python.startswith("/usr/bin/")
        for step in steps:
            target = "pip" if step.kind == "pip" else f"rknn-toolkit-lite2=={bundle.version}"
            body = pip_script(session.board.python, remote, target, system)
            result = session.run_as_root(body) if system else session.run(body)
            if result.return_code != 0:
                err = result.stderr.strip().splitlines()
                message = next((line for line in err if "not a supported wheel" in line or "Python.h" in line),
                               err[-1] if err else "pip failed")
                fix = " (sudo apt-get install python3-dev gcc)" if "Python.h" in message else ""
                raise ProvisionError(f"installing {target} failed: {message}{fix}")
    finally:
        session.run(script('rm -rf "$d"\n', d=remote))


def provision_job(bundle: Bundle, *, check_only: bool, lock_wait: float, persist: bool = False):
    target = Target(sdk=Version(bundle.version))

    def job(session: BoardSession) -> BoardResult:
        name = session.board.name
        facts = gather_facts(session)       # also tells the session how to become root (session.root_mode)
        plan = plan_provision(name, facts, bundle, persist)
        if plan.refused:
            return BoardResult(name, FAILED, data=plan, error=f"refused: {plan.refused}")
        if check_only or not plan.steps:
            return BoardResult(name, OK if not plan.steps else CHANGED, data=plan)
        with BoardLock(session, lock_wait):
            facts = gather_facts(session)          # what another run may have changed while we waited
            plan = plan_provision(name, facts, bundle, persist)
            if not plan.steps:
                return BoardResult(name, OK, data=plan)
            apply_plan(session, plan, bundle, facts)
            after = evaluate(name, gather_facts(session), target)
        errors = [f.message for f in after if f.severity == ERROR and f.component in ("runtime", "server", "lite2")]
        if errors:
            return BoardResult(name, FAILED, data=plan, bytes_sent=plan.bytes,
                               error="applied, but the board still fails the check: " + "; ".join(errors))
        return BoardResult(name, CHANGED, data=plan, bytes_sent=session.bytes_sent)
    return job


def rollback_job(*, lock_wait: float):
    def job(session: BoardSession) -> BoardResult:
        with BoardLock(session, lock_wait):
            result = session.run_as_root(rollback_script())
            if result.return_code != 0:
                return BoardResult(session.board.name, FAILED, error=result.stderr.strip())
            facts = gather_facts(session)
            manager = manager_of(facts)
            if facts.server:
                restart = session.run_as_root(server_script(manager, server_dir_of(facts)))
                if restart.return_code != 0:
                    raise ProvisionError(f"rknn_server: {restart.stderr.strip()}")
            facts = gather_facts(session)
        return BoardResult(session.board.name, CHANGED, data={
            "runtime": str(facts.runtime_version) if facts.runtime_version else None,
            "server": str(facts.server_version) if facts.server_version else None})
    return job
