"""Known failure messages of the toolkit, the runtime, adb and pip, mapped to a cause and a fix
(RKNN-NOTES.md §7, fixtures/toolkit-output/25-…)."""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    fix: str
    line: str = ""


RULES: list[tuple[re.Pattern, str, str]] = [(re.compile(p, re.I), cause, fix) for p, cause, fix in [
    (r"Invalid RKNN model version \d+|RKNN model version is .*support model version|RKNN_ERR_MODEL_INVALID",
     "the model was built by a newer rknn-toolkit2 than the board's librknnrt",
     "inv provision --host BOARD --bundle <the model's toolkit version>, or rebuild the model with the board's version"),
    (r"This rknn model is for (\w+), but current platform is (\w+)",
     "the model was built for another SoC", "rebuild it with target_platform set to the board's SoC"),
    (r"server connect fail|rknn_server on the con\w+ device is abnormal|Cannot connect to proxy",
     "rknn_server is not running on the board (or not reachable through adb forwarding)",
     "inv server.start --host BOARD"),
    (r"msg_ioctl_ack fail|msg_load_ack fail",
     "the PC toolkit and the board's rknn_server are different releases",
     "inv check --host BOARD, then inv provision --bundle <the toolkit's version>"),
    (r"adb server version \((\d+)\) doesn't match this client \((\d+)\)",
     "another adb (a different version) is running its server on the PC",
     "stop the other adb server (adb kill-server with that adb) and let the toolkit's bundled adb run"),
    (r"cannot bind listener.*localabstract",
     "abstract unix sockets are unavailable (WSL): the toolkit cannot forward @transfer_proxy",
     "run the toolkit on native Linux"),
    (r"no devices/emulators found|device '.*' not found|Connect to Device.*Failure|error: device offline|"
     r"Get board target failed",
     "the board is not listed by adb (USB cable, udev permissions, or network adb not connected)",
     "check `adb devices`; for network adb: adb connect IP:5555 and set the board's adb: in the inventory"),
    (r"failed to open rknpu module|failed to open rknn device",
     "the NPU device cannot be opened (driver not loaded, or the user lacks the render/video group)",
     "sudo usermod -aG render,video USER, or load the rknpu driver (inv check shows which)"),
    (r"librknnrt\.so: invalid ELF header",
     "librknnrt.so on the board is not a library (often a web page saved by mistake)",
     "inv provision --host BOARD"),
    (r"librknnrt\.so: cannot open shared object file",
     "librknnrt.so is not installed where the loader looks", "inv provision --host BOARD"),
    (r"undefined symbol: rknn_\w+",
     "librknnrt.so is older than the API the caller expects", "inv provision --host BOARD with the matching bundle"),
    (r"/sys/class/devfreq/dmc",
     "eval_perf(fix_freq=True) cannot set the DDR clock on this board (no devfreq/dmc)",
     "run inv perf with --no-fix-freq"),
    (r"is not a supported wheel on this platform",
     "the lite2 wheel does not match the board's Python (cpXY) or architecture",
     "inv bundle.import SDK --python <the board's version>, then inv provision"),
    (r"Python\.h: No such file|command 'gcc' failed|error: command .*gcc",
     "a dependency builds from source and the board lacks Python headers or gcc",
     "sudo apt-get install python3-dev gcc (on the board)"),
]]


_MISMATCH = "the PC toolkit and the board's rknn_server are different releases"
_MODEL_NEWER = "the model was built by a newer rknn-toolkit2 than the board's librknnrt"
_VERSION_LINE = re.compile(r"(API|DRV: rknn_server|DRV: rknnrt):\s*(\d+\.\d+\.\d+)")
SAME_RELEASE = Diagnosis(
    "toolkit, rknn_server and librknnrt are one release, yet the board's runtime refused the model: the board's "
    "NPU (its rknpu driver or device) failed, or the model is damaged",
    "read the board's rknn_server log (journalctl -u rknn_server, or where start_rknn.sh logs); inv check --host BOARD")


def diagnose(text: str) -> list[Diagnosis]:
    """Every distinct known cause found in a log, in the order first seen. When the toolkit's `RKNN VERSION`
    block shows the PC API, rknn_server and librknnrt at one release, a load/ioctl refusal is not a version
    mismatch, whatever the message suggests; when it shows the server or runtime at another release than the
    API, that is the mismatch, named with the toolkit's own version lines, even if the run went through (a
    1.6.0 rknn_server serves toolkit 2.3.2 without an error: the results are then not the SDK's)."""
    found: list[Diagnosis] = []
    seen = set()
    versions = {m.group(1): m.group(2) for m in _VERSION_LINE.finditer(text)}
    if len(versions) == 3 and len(set(versions.values())) == 1:
        seen.update((_MISMATCH, _MODEL_NEWER))
        if re.search(r"msg_load_ack fail|msg_ioctl_ack fail|RKNN_ERR_MODEL_INVALID", text):
            seen.add(SAME_RELEASE.cause)
            found.append(SAME_RELEASE)
    api = versions.get("API")
    others = {k: v for k, v in versions.items() if k != "API" and v.split(".")[:3] != (api or "").split(".")[:3]}
    if api and others:
        fix = next(f for _, c, f in RULES if c == _MISMATCH)
        found.append(Diagnosis(_MISMATCH, fix, f"API: {api}, " + ", ".join(f"{k}: {v}" for k, v in others.items())))
        seen.add(_MISMATCH)
    for line in text.splitlines():
        for pattern, cause, fix in RULES:
            if pattern.search(line) and cause not in seen:
                seen.add(cause)
                found.append(Diagnosis(cause, fix, line.strip()))
    return found
