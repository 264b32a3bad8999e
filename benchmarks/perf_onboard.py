"""`rkdeploy perf --on-board` on 1 board against 8 boards, side by side in one run (root, on demand):

    .venv/bin/python -m benchmarks.perf_onboard --boards 8 --rounds 3 [--duration 3]

Lab boards of profile rk3588-fresh (emulated aarch64 under qemu-user: lite2 is an aarch64 wheel and needs the
board's own Python), provisioned from a bundle imported from Rockchip's 2.3.2 tree (or the lab's stand-in tree
without it) with the lab's stand-in runtime. Model: a generated 2 MB rk3588 model, whose emulated NPU time is
~33 ms on one core. Each round runs (a) `perf --on-board --host box1` and (b) `perf --on-board --all`,
alternating which goes first; reported: medians and the ratio (b)/(a).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests import rockchip_files
from tests.lab.fleet import Lab
from tests.lab.sdk import cached_tree, standin_runtime

ROOT = Path(__file__).resolve().parents[1]
RKDEPLOY = str(Path(sys.executable).parent / "rkdeploy")


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per core mask (0: --runs)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--size-kb", type=int, default=2048, help="model size: the emulated NPU time grows with it")
    ap.add_argument("--work", default="/tmp/rkdeploy-bench-onboard")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not (work / "bundles/2.3.2/bundle.yaml").exists():
        tree = rockchip_files.sdk_tree("rknn-toolkit2-v2.3.2")
        src = [str(tree), "--runtime", f"aarch64={standin_runtime('2.3.2')}"] if tree.exists() else [str(cached_tree("2.3.2"))]
        subprocess.run([RKDEPLOY, "bundle.import", *src, "--python", "3.11"], cwd=work, env=env, check=True,
                       capture_output=True)
    model = work / f"rk3588-{args.size_kb}kb.rknn"
    subprocess.run([sys.executable, "-m", "tests.lab.modelgen", str(model), "--soc", "rk3588", "--format", "6",
                    "--toolkit", "2.3.2", "--size-kb", str(args.size_kb), "--inputs", "images:1x3x64x64:int8"], check=True,
                   capture_output=True, cwd=ROOT)
    lab = Lab("bonb")
    lab.down()
    try:
        t0 = time.monotonic()
        lab.up(profiles=["rk3588-fresh"] * args.boards, timeout=300)
        prov = subprocess.run([RKDEPLOY, "provision", "--all", "--bundle", "2.3.2", "--inventory", str(lab.inventory)],
                              cwd=work, env=env, capture_output=True, text=True)
        assert prov.returncode == 0, prov.stdout + prov.stderr
        print(f"lab up and provisioned: {time.monotonic() - t0:.0f} s", flush=True)
        load = ["--duration", str(args.duration)] if args.duration else ["--runs", str(args.runs)]
        base = [RKDEPLOY, "perf", "--on-board", "--model", str(model), "--inventory", str(lab.inventory), "--json",
                "--warmup", "2", *load]
        one_t, all_t, busy = [], [], {"one": [], "all": []}
        for r in range(args.rounds):
            order = [("one", ["--host", "box1"]), ("all", ["--all", "--parallel", str(args.boards)])]
            for label, sel in (order if r % 2 == 0 else order[::-1]):
                t, (b0, a0) = time.monotonic(), cpu_times()
                p = subprocess.run(base + sel, cwd=work, env=env, capture_output=True, text=True)
                dt, (b1, a1) = time.monotonic() - t, cpu_times()
                busy[label].append(100 * (b1 - b0) / max(a1 - a0, 1))
                assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
                (one_t if label == "one" else all_t).append(dt)
                print(f"round {r + 1} {label}: {dt:.2f} s, CPU busy {busy[label][-1]:.0f} %", flush=True)
        a, b = statistics.median(one_t), statistics.median(all_t)
        print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
              f"{time.strftime('%Y-%m-%d')}")
        print(f"model {args.size_kb} KiB, {' '.join(load)} per core mask")
        print(f"| boards | median | rounds | CPU busy |\n|---|---|---|---|\n"
              f"| 1 | {a:.2f} s | {', '.join(f'{x:.2f}' for x in one_t)} | {statistics.median(busy['one']):.0f} % |\n"
              f"| {args.boards} | {b:.2f} s | {', '.join(f'{x:.2f}' for x in all_t)} | {statistics.median(busy['all']):.0f} % |\n"
              f"ratio {b / a:.2f}×")
    finally:
        lab.down()


if __name__ == "__main__":
    main()
