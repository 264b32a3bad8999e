"""`inv perf` with the REAL rknn-toolkit2 2.3.2 on 1 and on 4 emulated lab boards (same model), side by side in
one run (root, on demand; RKDEPLOY_TOOLKIT_PYTHON or `python -m rkdeploy.toolkit 2.3.2` gives the toolkit):

    .venv/bin/python -m benchmarks.perf --rounds 3

Boards: four `rk3588-sdk232` boards (Rockchip's rknn_server 2.3.2 under qemu-user, the lab's stand-in
librknnrt with its emulated NPU, the lab adbd). Model: a generated RK3588 model with a ~1.3 MB FlatBuffer
(about 21 ms of emulated NPU time per run). Per round, in turn (order rotated each round):

  (a) `rkdeploy perf --host box1`                         one board
  (b) `rkdeploy perf --all`                               four boards, each toolkit run in its own namespace
  (c) `RKDEPLOY_PERF_ISOLATION=lock rkdeploy perf --all`  four boards, one toolkit run at a time (the old way)

Each: wall time, CPU seconds of rkdeploy and its children (the toolkit workers and adb), and how busy the
machine's cores were (/proc/stat). Results (medians) are printed as a Markdown table and written, with the
machine and the date, to benchmarks/results/perf-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.lab import modelgen
from tests.lab.fleet import Lab

ROOT = Path(__file__).resolve().parents[1]
RKDEPLOY = str(Path(sys.executable).parent / "rkdeploy")


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def toolkit_python() -> str:
    if os.environ.get("RKDEPLOY_TOOLKIT_PYTHON"):
        return os.environ["RKDEPLOY_TOOLKIT_PYTHON"]
    return subprocess.run([sys.executable, "-m", "rkdeploy.toolkit", "2.3.2"], check=True, capture_output=True,
                          text=True).stdout.strip()


def one(lab: Lab, model: Path, toolkit: str, select: list[str], isolation: str) -> dict:
    env = dict(os.environ, RKDEPLOY_TOOLKIT_PYTHON=toolkit, RKDEPLOY_PERF_ISOLATION=isolation,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = cpu_times()
    t0 = time.monotonic()
    proc = subprocess.run([RKDEPLOY, "perf", "--model", str(model), "--json", "--inventory", str(lab.inventory),
                           *select], capture_output=True, text=True, env=env, timeout=1200, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    busy1, total1 = cpu_times()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    doc = json.loads(proc.stdout)
    bad = [r for r in doc["results"] if not r["ok"]]
    assert proc.returncode == 0 and not bad, (proc.returncode, bad, proc.stderr[-2000:])
    assert doc["isolation"] == isolation, doc["isolation"]
    return {"wall_s": wall, "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "busy_pct": 100.0 * (busy1 - busy0) / max(1, total1 - total0),
            "board_ms": [r["time_ms"] for r in doc["results"]],
            "phases": {k: max(run["seconds"].get(k, 0) for run in doc["runs"]) for k in ("preflight", "toolkit",
                                                                                       "governors")}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lab", default="bperf")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    args = ap.parse_args()
    toolkit = toolkit_python()
    model = modelgen.write(Path("/tmp") / f"rkdeploy-bench-perf-{os.getpid()}.rknn", soc="rk3588",
                           toolkit="2.3.1-source_code", format=6, size_kb=1280)
    lab = Lab(args.lab)
    lab.down()
    cases = {"1 board": (["--host", "box1"], "netns"), "4 boards, namespaces": (["--all"], "netns"),
             "4 boards, lock": (["--all"], "lock")}
    got: dict[str, list[dict]] = {k: [] for k in cases}
    try:
        lab.up(profiles=["rk3588-sdk232"] * 4)
        for b in lab.boards():                       # the adbd (python3 under qemu) is up a moment after sshd
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection((b.ip, 5555), timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{b.name}: no adbd on 5555"
                    time.sleep(0.3)
        one(lab, model, toolkit, ["--all"], "netns")           # warm-up: page cache, adb keys, pyc
        names = list(cases)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                select, isolation = cases[name]
                got[name].append(one(lab, model, toolkit, select, isolation))
                print(f"round {r + 1} {name}: {got[name][-1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    finally:
        lab.down()
        model.unlink(missing_ok=True)
    single = statistics.median(x["wall_s"] for x in got["1 board"])
    rows = []
    for name, runs in got.items():
        wall = statistics.median(x["wall_s"] for x in runs)
        rows.append({"case": name, "wall_s": round(wall, 2), "vs_1_board": round(wall / single, 2),
                     "cpu_s": round(statistics.median(x["cpu_s"] for x in runs), 2),
                     "busy_pct": round(statistics.median(x["busy_pct"] for x in runs)),
                     "walls": [round(x["wall_s"], 2) for x in runs],
                     "emulated_board_ms": runs[-1]["board_ms"],
                     "slowest_board_phases_s": {k: round(statistics.median(x["phases"][k] for x in runs), 2)
                                                for k in ("preflight", "toolkit", "governors")}})
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": {
        "platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "model": Path("/proc/cpuinfo").read_text().split("model name")[1].split(":")[1].split("\n")[0].strip()
        if "model name" in Path("/proc/cpuinfo").read_text() else platform.processor()},
        "rounds": args.rounds, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"perf-{time.strftime('%Y%m%d-%H%M')}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['date']}, {result['machine']['platform']}, {result['machine']['cpus']} cores, "
          f"{args.rounds} rounds\n")
    print("| case | median wall | vs 1 board | CPU s (rkdeploy + toolkit + adb) | machine busy | slowest board: "
          "preflight / toolkit / governors | rounds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['wall_s']:.2f} s | {r['vs_1_board']:.2f}× | {r['cpu_s']:.1f} | {r['busy_pct']} % | "
              "{p[preflight]:.1f} / {p[toolkit]:.1f} / {p[governors]:.1f} s | ".format(p=r["slowest_board_phases_s"])
              + f"{', '.join(f'{w:.1f}' for w in r['walls'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
