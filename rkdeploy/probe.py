"""The board probe: one POSIX shell script, one round trip, every fact a task needs.

`probe_script()` is what runs on the board (no binutils, no bash-isms: vendor
images vary), `parse_probe()` turns its `key=value` lines into `BoardFacts`.
Both are pure, so the parser is tested from captured outputs without SSH.
"""
from __future__ import annotations

import json
import re
import shlex

from .facts import LIBCS, BoardFacts, InstalledFile, NpuNode
from .session import ROOT_MODE_FUNCTION, ROOT_MODES
from .versions import parse_driver, parse_lite2, parse_runtime, parse_server

RUNTIME_PATHS = ("/usr/lib/librknnrt.so", "/usr/lib64/librknnrt.so", "/usr/local/lib/librknnrt.so",
                 "/oem/usr/lib/librknnrt.so", "/oem/usr/lib/librknnmrt.so")
SERVER_PATHS = ("/usr/bin/rknn_server", "/oem/usr/bin/rknn_server", "/usr/local/bin/rknn_server")
# Files rkdeploy installs besides the runtime and server; hashed so a re-run uploads nothing.
MANAGED_PATHS = ("/usr/bin/start_rknn.sh", "/usr/bin/restart_rknn.sh", "/oem/usr/bin/start_rknn.sh",
                 "/oem/usr/bin/restart_rknn.sh", "/usr/include/rknn_api.h",
                 "/usr/include/rknn_matmul_api.h", "/usr/include/rknn_custom_op.h",
                 "/etc/systemd/system/rknn_server.service")
DRIVER_FILES = ("/sys/kernel/debug/rknpu/version", "/sys/kernel/debug/rknpu/driver_version",
                "/proc/debug/rknpu/driver_version")
DF_PATHS = ("/", "/usr/lib", "/tmp", "/var")

def probe_script(python: str = "python3", sudo_password_on_stdin: bool = False, extra_paths: tuple[str, ...] = (),
                 model_dir: str | None = None, system: bool = True) -> str:
    """The shell script the board runs. With `sudo_password_on_stdin`, its first stdin line is the
    sudo password: read into a shell variable and fed to `sudo -S` through a builtin, so it never
    appears in an argv, a log or the command text.

    `system=False` leaves out what only check/provision need (uname, root, files' checksums, server, Python):
    every process counts on a slow board, and deploy needs just the SoC, the runtime and the models."""
    read_pw = 'IFS= read -r RKD_PW || RKD_PW=""' if sudo_password_on_stdin else 'RKD_PW=""'
    models = _models_section(model_dir) if model_dir else ""
    body = _system_section(python, extra_paths) if system else _runtime_versions_section()
    return f"""LC_ALL=C; export LC_ALL
{read_pw}
p() {{ printf '%s=%s\\n' "$1" "$2"; }}
for d in /proc/device-tree /sys/firmware/devicetree/base; do
  if [ -r "$d/compatible" ]; then
    p compatible "$(tr '\\000' ' ' < "$d/compatible")"
    m=""; IFS= read -r m < "$d/model" 2>/dev/null; p model "$m"    # a builtin: the trailing NUL ends the text
    break
  fi
done
{body}{models}p end ok
"""


# Every version string form the runtimes and servers carry (docs/sdk-releases.md), each match on its own
# line, in file order: `librknnrt version: 2.3.2 (…)` / `librknnmrt version: …`, `rknn_server version: 2.3.2
# (…)` (servers from 1.5.2) and the bare `1.5.0 (17e11b1 build: …)` (the only form up to 1.5.0; 1.5.2 and
# later carry a bare `2.3.2 (1842325 build@…)` too, before the named one). `[^)[:cntrl:]]`: a match never
# runs across a NUL into the next string of the binary.
_VERSION_GREP = ("grep -a -o -E 'librknnm?rt version: [0-9][0-9A-Za-z.+_-]* \\([^)[:cntrl:]]*\\)|rknn_server version: "
                 "[0-9][0-9A-Za-z.+_-]* \\([^)[:cntrl:]]*\\)|[0-9]+\\.[0-9]+\\.[0-9]+[0-9a-z.]* "
                 "\\([0-9a-f]+ build[:@] ?[^)[:cntrl:]]*\\)'")
# rkv FILE sets $v to the one version string FILE carries: the named server form where there is one, else the
# first match; with builtins only after the one grep (every process counts on a slow board). A grep without
# `-a` (some busybox builds: busybox has no binary-file detection, so it needs none) exits 2 on the unknown
# option: then the same grep again without it (exit 1, no match, costs nothing more).
VERSION_FUNCTION = f"""nl='
'
rkv() {{
  v=$({_VERSION_GREP} "$1" 2>/dev/null); rkv_rc=$?
  [ $rkv_rc = 2 ] && {{ v=$({_VERSION_GREP.replace("grep -a ", "grep ")} "$1" 2>/dev/null); rkv_rc=$?; }}
  [ $rkv_rc = 0 ] || return 1
  case "$v" in *"rknn_server version: "*) v="rknn_server version: ${{v#*"rknn_server version: "}}";; esac
  v=${{v%%"$nl"*}}
}}
"""


def version_script(path: str) -> str:
    """A script printing the version string the probe reads from `path` (for tests on real binaries)."""
    return f"{VERSION_FUNCTION}rkv {shlex.quote(path)} && printf '%s\\n' \"$v\"\n"


def _runtime_versions_section() -> str:
    paths = " ".join(shlex.quote(p) for p in RUNTIME_PATHS)
    return f"""{VERSION_FUNCTION}for f in {paths}; do
  [ -e "$f" ] && rkv "$f" && p runtime_version "$f|$v"
done
"""


# What the probe reads as root (a script of its own, run by sh -c as root or by sudo -n sh -c): it prints its
# own line, so no command substitution has to wrap the sudo.
_ROOT_PART = f"""for f in {" ".join(DRIVER_FILES)}; do
  [ -r "$f" ] && {{ d=$(cat "$f"); printf 'npu_driver=%s\\n' "$d"; exit 0; }}
done
d=$(dmesg 2>/dev/null | grep -o "Initialized rknpu [0-9.]*" | tail -n 1)
printf 'npu_driver=%s\\n' "$d"
"""


# The PID of a process by exact name: pgrep where there is one, else pidof (Debian's busybox has no pgrep).
PID_FUNCTION = """rkd_pid() {
  if command -v pgrep > /dev/null 2>&1; then pgrep -x "$1" | head -n 1
  else set -- $(pidof "$1" 2>/dev/null); echo "${1:-}"; fi
}
"""
# The C library, by its program loader: uClibc (RV1103/RV1106 Buildroot images), musl, else glibc.
LIBC_PART = """rkd_libc=
for f in /lib/ld-uClibc.so.0 /lib/ld-uClibc.so.1; do [ -e "$f" ] && { rkd_libc=uclibc; break; }; done
[ -n "$rkd_libc" ] || for f in /lib/ld-musl-*.so.1; do [ -e "$f" ] && { rkd_libc=musl; break; }; done
[ -n "$rkd_libc" ] || for f in /lib/ld-linux*.so.* /lib64/ld-linux*.so.* /lib/*-linux-gnu*/ld-linux*.so.*; do
  [ -e "$f" ] && { rkd_libc=glibc; break; }
done
p libc "$rkd_libc"
"""


def _system_section(python: str, extra_paths: tuple[str, ...]) -> str:
    files = " ".join(shlex.quote(p) for p in (*RUNTIME_PATHS, *SERVER_PATHS, *MANAGED_PATHS, *extra_paths))
    return f"""{VERSION_FUNCTION}{ROOT_MODE_FUNCTION}{PID_FUNCTION}rkd_root_part={shlex.quote(_ROOT_PART)}
p uname "$(uname -m -r -n)"
p id "$(id)"
if [ -r /etc/os-release ]; then p os "$(. /etc/os-release; echo "$PRETTY_NAME")"; fi
{LIBC_PART}rkd_root_mode
p root_mode "$rkd_mode"
# Everything that needs root in one privileged call (sudo costs a process tree each time), run the way
# session.run_as_root runs root scripts: sh -c as root, else sudo -n. A password (sudo-password) is given to
# `sudo -S -v` from a variable through a builtin, and the root call after it is a child of this same shell
# (no $(...), no exec: sudo without a tty finds its cached credential by the parent process only).
rkd_ran=no
case "$rkd_mode" in
  root) sh -c "$rkd_root_part" < /dev/null 2>/dev/null && rkd_ran=yes ;;
  sudo) sudo -n sh -c "$rkd_root_part" < /dev/null 2>/dev/null && rkd_ran=yes ;;
  sudo-password)
    if [ -z "$RKD_PW" ]; then :
    elif printf '%s\n' "$RKD_PW" | sudo -S -p '' -v > /dev/null 2>&1; then
      if sudo -n sh -c "$rkd_root_part" < /dev/null 2>/dev/null; then rkd_ran=yes; p root_password ok
      else p root_password uncached; fi
    else p root_password refused; fi ;;
esac
RKD_PW=
if [ "$rkd_mode" = root ]; then p sudo root; elif [ $rkd_ran = yes ]; then p sudo ok; else p sudo no; fi
for n in /dev/rknpu /dev/dri/renderD*; do
  [ -e "$n" ] && p npu_node "$n|$(stat -c '%G|%a' "$n")"
done
for f in {files}; do
  [ -e "$f" ] || continue
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \\n')
  rkv "$f" || v=""
  p file "$f|$(stat -c %s "$f")|$(sha256sum < "$f" | cut -d ' ' -f 1)|$magic|$v"
done
spid=$(rkd_pid rknn_server)
p server_pid "$spid"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] && systemctl cat rknn_server.service >/dev/null 2>&1; then
  p server_unit yes
  [ "$(systemctl is-active rknn_server.service 2>/dev/null)" = active ] && p server_manager systemd
fi
[ -n "$(rkd_pid start_rknn.sh)" ] && p server_manager start_rknn.sh
[ -d /run/systemd/system ] && p systemd yes
py=$(command -v {shlex.quote(python)} 2>/dev/null)
lite2=""; pip=""
if [ -n "$py" ]; then
  # No Python started here: at fleet scale its start-up would cost more than the rest of the probe.
  pv=$("$py" -V 2>&1 | cut -d ' ' -f 2)
  p python "$pv"
  mm=$(echo "$pv" | cut -d . -f 1-2)
  p python_tag "cp$(echo "$mm" | tr -d .)"
  venv=$(dirname "$(dirname "$py")")
  [ -e "/usr/include/python$mm/Python.h" ] || [ -e "$venv/include/python$mm/Python.h" ] && p python_h yes
  # Only where this Python looks: a virtualenv sees the system's packages only if made to.
  set -- /usr/lib/python3/dist-packages "/usr/local/lib/python$mm/dist-packages" "/usr/lib/python$mm/site-packages"
  if [ -f "$venv/pyvenv.cfg" ]; then
    grep -qiE '^include-system-site-packages *= *true' "$venv/pyvenv.cfg" || set --
    set -- "$venv/lib/python$mm/site-packages" "$@"
  else
    set -- "$@" "$HOME/.local/lib/python$mm/site-packages"
  fi
  for site in "$@"; do
    for d in "$site"/rknn_toolkit_lite2-*.dist-info "$site"/pip-*.dist-info; do
      [ -d "$d" ] || continue
      n=${{d##*/}}; n=${{n%.dist-info}}
      case "$n" in rknn_toolkit_lite2-*) [ -n "$lite2" ] || lite2=${{n#rknn_toolkit_lite2-}};; pip-*) [ -n "$pip" ] || pip=${{n#pip-}};; esac
    done
  done
  p lite2 "$lite2"
  p pip "$pip"
fi
command -v gcc >/dev/null 2>&1 && p gcc yes
# Rockchip's rknn_server reads the runtime's version with `strings LIB | grep "librknnrt version"`
command -v strings >/dev/null 2>&1 && p strings yes
df -Pk {" ".join(DF_PATHS)} 2>/dev/null | while read -r fs blocks used avail cap mnt; do
  [ "$fs" = Filesystem ] || p df "$mnt|$avail"
done
"""


def _models_section(model_dir: str) -> str:
    """Deployed models: each name's active version and every kept version's metadata (one JSON line)."""
    md = shlex.quote(model_dir)
    return f"""{ROOT_MODE_FUNCTION}md={md}
if [ -d "$md" ]; then [ -w "$md" ] && p model_dir "$md|writable" || p model_dir "$md|present"; else p model_dir "$md|absent"; fi
d="$md"; while [ ! -e "$d" ]; do d=${{d%/*}}; d=${{d:-/}}; done
# Root only if the login user cannot make or write the model directory (first deploy to /opt/...): how
# root is reached then (session.run_as_root makes the directory), at no cost for every later deploy.
if [ ! -w "$md" ]; then
  if [ ! -e "$md" ] && [ -w "$d" ]; then p model_dir_parent writable; else rkd_root_mode; p root_mode "$rkd_mode"; fi
fi
set -f; set -- $(df -Pk "$d" 2>/dev/null); set +f    # header (7 words), then the line: Available is word 11
[ $# -ge 11 ] && p model_dir_free "${{11}}"
# few processes from here (one readlink per model): on a slow board every started process counts
for cur in "$md"/*/current.rknn; do
  [ -L "$cur" ] || continue
  d=${{cur%/current.rknn}}
  target=$(readlink "$cur")
  case "$cur$target" in *"$nl"*) continue;; esac   # a newline in a name would forge probe lines: not ours
  p model_current "${{d##*/}}|$target"
  [ "${{d##*/}}" = "${{RKD_MODEL:-}}" ] && RKD_CURRENT=$target    # for a caller's script that follows
done
for meta in "$md"/*/versions/*.json; do
  [ -f "$meta" ] && IFS= read -r line < "$meta" && p model_version "$line"
done
"""


class ProbeError(RuntimeError):
    """The probe's output is not what the probe prints: the board ended it early or is not Linux.
    `link_lost` tells the two stories apart: True when the caller saw the SSH channel or transport end
    without the command's exit status (ProbeLinkLost, also a ConnectionError: the board is unreachable)."""
    link_lost = False


class ProbeLinkLost(ProbeError, ConnectionError):
    """The link to the board was lost while the probe ran: its output stops short for that reason."""
    link_lost = True


# Numbers the probe prints (PIDs, sizes, KiB free): plain ASCII digits, at most 18 of them (int() of a longer
# run is slow or refused, and no real value is that long); anything else is taken for "not printed".
_NUMBER = re.compile(r"[0-9]{1,18}")


def _number(value: str) -> int | None:
    return int(value) if _NUMBER.fullmatch(value) else None


def parse_probe(output: str | bytes, *, link_lost: bool = False) -> BoardFacts:
    """BoardFacts from the probe's output (bytes are decoded as UTF-8 with U+FFFD for bytes that are not:
    a file name in Latin-1 must not make a board unreadable). `link_lost`: the caller saw the channel end
    without an exit status (transport dead), so output cut short is reported as a lost link, not as a
    board whose login shell is not a POSIX shell."""
    if isinstance(output, (bytes, bytearray)):
        output = bytes(output).decode("utf-8", errors="replace")
    facts = BoardFacts()
    seen_end = False
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if key == "end":
            seen_end = True
        elif key in ("os", "model", "python", "python_tag", "pip", "sudo"):
            setattr(facts, key, value)
        elif key == "libc":
            facts.libc = value if value in LIBCS else ""
        elif key == "root_mode":
            facts.root_mode = value if value in ROOT_MODES else ""
        elif key == "root_password":
            facts.root_password = value if value in ("ok", "refused", "uncached") else ""
        elif key == "uname":                  # uname -m -r -n prints: nodename release machine
            parts = value.split()
            if len(parts) == 3:
                facts.hostname, facts.kernel, facts.arch = parts
        elif key == "id":
            facts.user, facts.user_groups = _parse_id(value)
        elif key == "compatible":
            facts.compatible = value.split()
        elif key == "npu_driver":
            facts.npu_driver = parse_driver(value) if value else None
        elif key == "npu_node":
            path, group, mode = (value.split("|") + ["", ""])[:3]
            facts.npu_nodes.append(NpuNode(path=path, group=group, mode=mode))
        elif key == "file":
            _add_file(facts, value)
        elif key == "runtime_version":           # the light probe: path and version only
            path, _, ver = value.partition("|")
            item = InstalledFile(path=path, version=parse_runtime(ver) if ver else None)
            facts.runtimes.append(item)
            facts.runtime = facts.runtime or item
        elif key == "server_pid":
            facts.server_pid = _number(value)
            facts.server_running = facts.server_pid is not None
        elif key == "server_manager":
            facts.server_manager = facts.server_manager or value
        elif key == "server_unit":
            facts.server_unit = value == "yes"
        elif key == "systemd":
            facts.systemd = value == "yes"
        elif key == "lite2":
            facts.lite2 = parse_lite2(value) if value else None
        elif key in ("python_h", "gcc", "strings"):
            setattr(facts, key, value == "yes")
        elif key == "model_dir":
            facts.model_dir_state = value.rpartition("|")[2]
        elif key == "model_dir_parent":
            facts.model_dir_parent_writable = value == "writable"
        elif key == "model_dir_free":
            facts.model_dir_free_kb = _number(value)
        elif key == "model_current":
            name, _, target = value.partition("|")
            facts.models_current[name] = target
        elif key == "model_version":
            try:
                meta = json.loads(value)
            except (ValueError, RecursionError):   # RecursionError: nested thousands deep
                meta = None
            if isinstance(meta, dict):
                facts.model_versions.append(meta)
            else:
                facts.warnings.append(f"unreadable model metadata: {value[:80]!r}")
        elif key == "df":                     # "mountpoint|available KiB" (a mount point may hold a '|')
            path, _, kb = value.rpartition("|")
            if _number(kb) is not None:
                facts.disk_free_kb[path] = _number(kb)
    _derive_root(facts)
    if not seen_end:
        if link_lost:
            raise ProbeLinkLost("the link to the board was lost during the probe (the SSH connection ended "
                                f"before the probe finished, after {len(output)} characters of its output)")
        raise ProbeError("the board's probe output ended early (the command finished without the probe's last "
                         "line: is the login shell a POSIX shell on Linux?)")
    return facts


def _derive_root(facts: BoardFacts) -> None:
    """root_mode and the older `sudo` fact from each other (outputs of older probes carry `sudo` only)."""
    if not facts.root_mode and facts.sudo:
        facts.root_mode = {"root": "root", "ok": "sudo", "no": "sudo-password"}.get(facts.sudo, "")
    if facts.root_mode and facts.sudo not in ("root", "ok", "no"):
        facts.sudo = ("root" if facts.root_mode == "root" else
                      "ok" if facts.root_mode == "sudo" or facts.root_password == "ok" else "no")


def _parse_id(text: str) -> tuple[str, list[str]]:
    """`uid=1000(rock) gid=1000(rock) groups=1000(rock),27(sudo),44(video)` → ("rock", [rock, sudo, video])."""
    user = re.search(r"uid=\d+\(([^)]*)\)", text)
    groups = re.search(r"groups=(\S+)", text)
    # (?<!\d): an entry starts where its digit run starts; without it, a long digit run without "(" was tried
    # from each of its digits (20 000 digits: 1.2 s, quadratic).
    names = re.findall(r"(?<!\d)\d+\(([^)]*)\)", groups.group(1)) if groups else []
    return (user.group(1) if user else ""), names


def _add_file(facts: BoardFacts, value: str) -> None:
    path, size, sha, magic, ver = (value.split("|", 4) + [""] * 5)[:5]
    item = InstalledFile(path=path, sha256=sha, size=_number(size) or 0, is_elf=magic == "7f454c46")
    if path in RUNTIME_PATHS:
        item.version = parse_runtime(ver) if ver else None
        facts.runtimes.append(item)
        if facts.runtime is None:
            facts.runtime = item
    elif path in SERVER_PATHS:
        item.version = parse_server(ver) if ver else None
        if facts.server is None:
            facts.server = item
    facts.files[path] = sha
