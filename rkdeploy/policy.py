"""Version policy: what must match what, and what to do when it does not.

Rockchip's rule (RKNN-NOTES.md §4): rknn-toolkit2 on the PC, rknn_server and
librknnrt on the board are one release. Build suffixes do not count. Every
finding says what is wrong in words a user recognises and the command that
fixes it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from packaging.version import Version

from .facts import BoardFacts
from .session import root_advice
from .versions import same_release

_ROOT_SHORT = {"no-sudo-rights": "driver unreadable (no sudo rights)", "no-sudo": "driver unreadable (no sudo)"}

ERROR, WARNING = "error", "warning"
DRIVER_FLOOR = Version("0.9.2")        # what Rockchip's docs recommend
DRIVER_HARD_WARN = Version("0.8.8")    # what the runtime itself warns below
SUPPORTED_ARCHES = {"aarch64": "aarch64", "arm64": "aarch64", "armv7l": "armhf", "armv8l": "armhf"}


@dataclass(frozen=True)
class Finding:
    severity: str
    component: str     # runtime, server, lite2, driver, toolkit, arch, npu, sudo
    message: str
    fix: str = ""
    short: str = ""    # a few words for the table's reason column

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    """The releases a fleet should run: the selected SDK bundle (or --sdk) and the PC toolkit."""
    sdk: Version | None = None
    toolkit: Version | None = None

    @property
    def expected(self) -> Version | None:
        return self.sdk or self.toolkit


def evaluate(name: str, facts: BoardFacts, target: Target) -> list[Finding]:
    findings: list[Finding] = []
    add = findings.append
    provision = f"inv provision --host {name}" + (f" --bundle {target.expected}" if target.expected else "")

    if facts.arch not in SUPPORTED_ARCHES:
        add(Finding(ERROR, "arch", f"architecture {facts.arch or 'unknown'} has no RKNN runtime "
                                   "(Rockchip ships aarch64 and armhf only)", short=f"arch {facts.arch or 'unknown'}"))
    runtime, server = facts.runtime, facts.server
    if runtime is None:
        add(Finding(ERROR, "runtime", "librknnrt.so is not installed (looked in /usr/lib, /usr/lib64, "
                                      "/usr/local/lib, /oem/usr/lib)", provision, "no librknnrt"))
    elif not runtime.is_elf:
        add(Finding(ERROR, "runtime", f"{runtime.path} is not an ELF library (programs fail with "
                                      "'invalid ELF header'; often a web page saved by mistake)", provision, "runtime not ELF"))
    elif runtime.version is None:
        add(Finding(ERROR, "runtime", f"{runtime.path} carries no librknnrt version string", provision, "runtime unversioned"))
    if server is None:
        add(Finding(ERROR, "server", "rknn_server is not installed (connected-board eval_perf/eval_memory "
                                     "need it)", provision, "no rknn_server"))
    elif server.version is None:
        add(Finding(ERROR, "server", f"{server.path} carries no rknn_server version string", provision, "server unversioned"))
    elif not facts.server_running:
        add(Finding(WARNING, "server", "rknn_server is installed but not running (the toolkit then fails "
                                       "with 'server connect fail')", f"inv server.start --host {name}", "server stopped"))

    if server is not None and not facts.strings:
        add(Finding(WARNING, "server", "binutils' `strings` is missing: Rockchip's rknn_server runs `strings` on "
                                       "librknnrt.so to read its version, and without it connected-board runs "
                                       "(eval_perf, eval_memory) fail with 'Error reading version info from "
                                       "command output'", "sudo apt-get install binutils", "no strings (binutils)"))
    rv, sv = facts.runtime_version, facts.server_version
    if rv and sv and not same_release(rv.release, sv.release):
        add(Finding(ERROR, "server", f"rknn_server {sv} and librknnrt {rv} differ: Rockchip requires one "
                                     "release (mismatches fail with 'msg_ioctl_ack fail' or 'ACK_FAIL')",
                    provision, f"server {sv} ≠ runtime {rv}"))
    if target.sdk:
        for label, v in (("librknnrt", rv), ("rknn_server", sv)):
            if v and not same_release(v.release, target.sdk):
                add(Finding(ERROR, "runtime" if label == "librknnrt" else "server",
                            f"{label} {v} is not the fleet's SDK {target.sdk}", provision,
                            f"{label} {v} ≠ SDK {target.sdk}"))
    if target.toolkit and sv and not same_release(sv.release, target.toolkit):
        add(Finding(ERROR, "toolkit", f"PC rknn-toolkit2 {target.toolkit} and the board's rknn_server {sv} "
                                      "differ: connected-board runs will fail",
                    f"inv provision --host {name} --bundle {target.toolkit} (or install rknn-toolkit2=={sv} on the PC)",
                    f"toolkit {target.toolkit} ≠ server {sv}"))
    if target.sdk and target.toolkit and not same_release(target.sdk, target.toolkit):
        add(Finding(WARNING, "toolkit", f"the PC's rknn-toolkit2 {target.toolkit} is not the fleet's SDK "
                                        f"{target.sdk}: models it builds may not load on the boards",
                    f"pip install rknn-toolkit2=={target.sdk} in the toolkit's environment",
                    f"toolkit {target.toolkit} ≠ SDK {target.sdk}"))
    if facts.lite2 and rv and not same_release(facts.lite2.release, rv.release):
        add(Finding(ERROR, "lite2", f"rknn-toolkit-lite2 {facts.lite2} does not match librknnrt {rv}", provision,
                    f"lite2 {facts.lite2} ≠ runtime {rv}"))
    elif facts.lite2 is None and target.expected and facts.arch == "aarch64":
        add(Finding(WARNING, "lite2", "rknn-toolkit-lite2 is not installed (Python apps on the board need it)",
                    provision, "no lite2"))

    driver = facts.npu_driver
    if driver is None:
        advice = root_advice(facts.root_mode, facts.user, facts.root_password)
        if advice or facts.sudo == "no":
            fix = advice or root_advice("sudo-password")
            add(Finding(WARNING, "driver", "NPU driver version unreadable: it needs root and " + fix.split(": ", 1)[0],
                        fix.split(": ", 1)[1] if ": " in fix else fix, _ROOT_SHORT.get(facts.root_mode, "driver unreadable (sudo)")))
        else:
            add(Finding(WARNING, "driver", "no RKNPU driver found (no debugfs entry, no dmesg line): is the "
                                           "NPU enabled in this kernel?", short="no NPU driver"))
    elif driver.version < DRIVER_FLOOR:
        add(Finding(WARNING, "driver", f"NPU driver {driver} is below the recommended {DRIVER_FLOOR}"
                                       + (f" (the runtime itself warns below {DRIVER_HARD_WARN})"
                                          if driver.version < DRIVER_HARD_WARN else ""),
                    "update the board's kernel/BSP image from the board vendor", f"driver {driver} old"))
    if not facts.npu_nodes:
        add(Finding(WARNING, "npu", "no NPU device node (/dev/rknpu or /dev/dri/renderD*)", short="no NPU node"))
    else:
        missing = [n for n in facts.npu_nodes if n.group not in facts.user_groups and facts.sudo != "root"]
        if missing and len(missing) == len(facts.npu_nodes):
            groups = sorted({n.group for n in missing})
            add(Finding(WARNING, "npu", f"user {facts.user} is not in group {'/'.join(groups)} of "
                                        f"{', '.join(n.path for n in missing)} ('failed to open rknpu module')",
                        f"sudo usermod -aG {groups[0]} {facts.user}", "NPU node permissions"))
    return findings


def status_of(findings: list[Finding]) -> str:
    return "mismatch" if any(f.severity == ERROR for f in findings) else "ok"

