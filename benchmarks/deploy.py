"""Model rollout on 8 lab boards (native x86 sshd by default, --emulated for qemu aarch64), links limited to 100 Mbit/s, side by side in one run (root, on demand):

    bash benchmarks/setup.sh && .venv/bin/python -m benchmarks.deploy --boards 8 --rounds 3

(a) floor: `scp` of the same file to every board at once (curve25519, as paramiko negotiates);
(b) `rkdeploy deploy` (validation probe, lock, upload, verify, switch); then, for an unchanged model,
(c) one `ssh host true` per board at once against (d) `rkdeploy deploy` again (nothing to send).
The ~13 MB model is a real fixture model (pphuman, toolkit 2.3.1) with its FlatBuffer section grown by
zeros: a benchmark payload, not a model to run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.lab import faults, modelgen
from tests.lab.fleet import Lab

ROOT = Path(__file__).resolve().parents[1]
SOURCE = modelgen.cached(soc="rk3588",
                        toolkit="2.3.1-source_code", format=6, size_kb=2700)
SSH_OPTS = ["-o", "KexAlgorithms=curve25519-sha256", "-o", "BatchMode=yes", "-o", "ControlMaster=no"]


def grown_model(dest: Path, size_mb: int, salt: int) -> Path:
    data = SOURCE.read_bytes()
    flat = struct.unpack_from("<Q", data, 16)[0]
    extra = size_mb * 1024 * 1024 - len(data)
    body = data[64:64 + flat] + salt.to_bytes(8, "little") + b"\0" * (extra - 8)
    out = data[:16] + struct.pack("<Q", len(body)) + data[24:64] + body + data[64 + flat:]
    dest.write_bytes(out)
    return dest


def timed(fn) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def fan_out(lab: Lab, argv_for) -> None:
    with ThreadPoolExecutor(len(lab.boards())) as pool:
        outs = list(pool.map(lambda b: subprocess.run(argv_for(b), capture_output=True), lab.boards()))
    bad = [o.stderr.decode()[-300:] for o in outs if o.returncode]
    assert not bad, bad


def in_process(lab: Lab, model: Path) -> float:
    """The deploy job through the fleet runner in this process: no interpreter start-up."""
    from io import StringIO

    from rich.console import Console

    from rkdeploy.connection import SshSettings
    from rkdeploy.deploy import deploy_job
    from rkdeploy.fleet import run_fleet
    from rkdeploy.inventory import load
    from rkdeploy.rknn_model import read_model

    inv = load(lab.inventory)
    settings = SshSettings(known_hosts=Path(inv.settings["known_hosts"]), connect_timeout=30)
    t0 = time.monotonic()
    rknn = read_model(model)
    run = run_fleet(inv.select(all=True), deploy_job(rknn, "lib", model_dir="/home/rock/models", keep=3, force=False,
                                                     check_only=False, lock_wait=60),
                    settings, label="bench", parallel=len(inv.boards), console=Console(file=StringIO()))
    wall = time.monotonic() - t0
    assert all(r.status in ("ok", "changed") for r in run.results), [r.error for r in run.results]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=13)
    ap.add_argument("--rate", default="100mbit")
    ap.add_argument("--emulated", action="store_true", help="qemu aarch64 boards instead of native x86 sshd ones")
    args = ap.parse_args()
    lab = Lab("bdep")
    lab.down()
    lab.up(profiles=["rk3588-mismatch"] * args.boards, native=not args.emulated)
    key = ["-i", str(lab.key), "-o", f"UserKnownHostsFile={lab.known_hosts}"]
    rkdeploy = [str(ROOT / ".venv/bin/rkdeploy")]
    work = lab.dir / "bench"
    work.mkdir(exist_ok=True)
    for b in lab.boards():
        faults.limit_bandwidth(b, args.rate)
    samples: dict[str, list[float]] = {"scp floor": [], "rkdeploy deploy": [], "library deploy": [],
                                       "ssh true floor": [], "rkdeploy re-deploy": [], "library re-deploy": []}
    try:
        for r in range(args.rounds):
            model = grown_model(work / f"bench-{r}.rknn", args.size_mb, r)
            lib_model = grown_model(work / f"bench-lib-{r}.rknn", args.size_mb, 1000 + r)
            deploy = [*rkdeploy, "deploy", str(model), "--all", "--name", "bench", "--json", "--model-dir",
                      "/home/rock/models", "--inventory", str(lab.inventory)]

            def scp():
                fan_out(lab, lambda b: ["scp", "-q", *key, *SSH_OPTS, str(model), f"rock@{b.ip}:/tmp/scp-{r}.rknn"])

            def cli(expect_bytes: bool):
                out = subprocess.run(deploy, capture_output=True, text=True)
                boards = json.loads(out.stdout)["boards"]
                assert all((b["bytes_sent"] > 0) == expect_bytes and b["status"] != "failed" for b in boards), out.stdout[-500:]

            first = [("scp floor", scp), ("rkdeploy deploy", lambda: cli(True)),
                     ("library deploy", lambda: in_process(lab, lib_model))]
            again = [("ssh true floor", lambda: fan_out(lab, lambda b: ["ssh", *key, *SSH_OPTS, f"rock@{b.ip}", "true"])),
                     ("rkdeploy re-deploy", lambda: cli(False)), ("library re-deploy", lambda: in_process(lab, lib_model))]
            for steps in (first, again):
                # Floors first in even rounds, last in odd ones: no side gains from going first or second.
                for label, step in (steps if r % 2 == 0 else steps[::-1]):
                    samples[label].append(timed(step))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        lab.down()
    med = {k: statistics.median(v) for k, v in samples.items()}
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "boards": args.boards, "board_kind": "emulated aarch64" if args.emulated else "native x86 sshd",
              "rounds": args.rounds, "model_mb": args.size_mb, "link": args.rate,
              "median_s": {k: round(v, 3) for k, v in med.items()},
              "deploy_vs_scp": round(med["rkdeploy deploy"] / med["scp floor"], 2),
              "redeploy_vs_ssh_round_trip": round(med["rkdeploy re-deploy"] / med["ssh true floor"], 2),
              "library_deploy_vs_scp": round(med["library deploy"] / med["scp floor"], 2),
              "library_redeploy_vs_ssh_round_trip": round(med["library re-deploy"] / med["ssh true floor"], 2),
              # Each round's own ratio, then their median: robust to the machine speeding up or slowing
              # down between rounds (a shared VM does), which a ratio of medians is not.
              "paired_median_ratios": {f"{k} / {floor}": round(statistics.median(
                  a / b for a, b in zip(samples[k], samples[floor])), 2) for k, floor in (
                  ("rkdeploy deploy", "scp floor"), ("library deploy", "scp floor"),
                  ("rkdeploy re-deploy", "ssh true floor"), ("library re-deploy", "ssh true floor"))},
              "samples_s": {k: [round(x, 3) for x in v] for k, v in samples.items()}}
    print(json.dumps(report, indent=1))
    (ROOT / "benchmarks/results").mkdir(exist_ok=True)
    (ROOT / f"benchmarks/results/deploy-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
