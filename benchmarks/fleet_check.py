"""Fleet fact gathering on N lab boards, side by side in one run (run as root, on demand):

    bash benchmarks/setup.sh && .venv/bin/python -m benchmarks.fleet_check --boards 32 --rounds 5

(a) floor: a bare `ssh host 'uname -m'` fan-out at the same parallelism, with the key exchange paramiko
    negotiates (curve25519-sha256); (b) `ansible all -f N -m setup`; (c) `pyinfra --parallel N INV fact …`;
(d) `rkdeploy check --all` (the CLI, one probe per board). Boards are the plain x86 sshd variant, so
emulation flatters no one. Rounds are interleaved; medians are reported with CPU use of the children.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.lab.fleet import Lab

ROOT = Path(__file__).resolve().parents[1]
BENCH_BIN = ROOT / ".bench-venv/bin"
PYINFRA_FACTS = ["server.Arch", "server.Kernel", "server.Hostname", "server.LinuxDistribution",
                 "server.Date"]


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine: sshd and the boards' shells count too."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env=None, check=True) -> tuple[float, float, str]:
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    if check and proc.returncode not in (0, 2):
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}")
    return wall, children_cpu() - cpu0, proc.stdout


def floor(lab: Lab, parallel: int) -> tuple[float, float]:
    boards = lab.boards()
    cmd = lambda b: ["ssh", "-i", str(lab.key), "-o", f"UserKnownHostsFile={lab.known_hosts}",  # noqa: E731
                     "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                     "-o", "KexAlgorithms=curve25519-sha256", "-o", "ControlMaster=no", f"rock@{b.ip}", "uname -m"]
    cpu0, t0 = children_cpu(), time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        outs = list(pool.map(lambda b: subprocess.run(cmd(b), capture_output=True, text=True), boards))
    wall = time.monotonic() - t0
    assert all(o.stdout.strip() == "x86_64" for o in outs), [o.stderr for o in outs if o.returncode]
    return wall, children_cpu() - cpu0


def in_process(lab: Lab, parallel: int) -> tuple[float, float]:
    """The check job through the fleet runner, without the CLI's interpreter start-up."""
    from io import StringIO

    from rich.console import Console

    from rkdeploy.check import check_job
    from rkdeploy.fleet import run_fleet
    from rkdeploy.inventory import load
    from rkdeploy.policy import Target
    from rkdeploy.connection import SshSettings

    inv = load(lab.inventory)
    settings = SshSettings(known_hosts=Path(inv.settings["known_hosts"]), connect_timeout=30)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    run = run_fleet(inv.select(all=True), check_job(Target()), settings, label="bench", parallel=parallel,
                    console=Console(file=StringIO()))
    wall = time.monotonic() - t0
    assert all(r.status == "ok" for r in run.results), [r.error for r in run.results if r.error]
    return wall, time.process_time() - cpu0


def write_tool_inventories(lab: Lab, work: Path) -> tuple[Path, Path]:
    ssh_args = f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes"
    ini = ["[lab]"] + [f"{b.name} ansible_host={b.ip}" for b in lab.boards()]
    ini += ["[lab:vars]", "ansible_user=rock", f"ansible_ssh_private_key_file={lab.key}",
            "ansible_python_interpreter=/usr/bin/python3", f"ansible_ssh_common_args='{ssh_args}'"]
    (work / "hosts.ini").write_text("\n".join(ini) + "\n")
    hosts = [(b.ip, {"ssh_user": "rock", "ssh_key": str(lab.key), "ssh_known_hosts_file": str(lab.known_hosts),
                     "ssh_strict_host_key_checking": "yes"}) for b in lab.boards()]
    (work / "pyinfra_inventory.py").write_text(f"lab = {hosts!r}\n")
    return work / "hosts.ini", work / "pyinfra_inventory.py"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="leave the bench lab up")
    args = ap.parse_args()
    lab = Lab("bench")
    lab.down()
    lab.up(boards=args.boards, native=True)
    work = lab.dir / "tools"
    work.mkdir(exist_ok=True)
    ini, pyinfra_inv = write_tool_inventories(lab, work)
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"), ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3")
    runners = {
        "floor (ssh, curve25519)": lambda: floor(lab, args.boards),
        "rkdeploy library (in-process)": lambda: in_process(lab, args.boards),
        "rkdeploy check": lambda: timed([str(ROOT / ".venv/bin/rkdeploy"), "check", "--all", "--json",
                                         "--parallel", str(args.boards), "--inventory", str(lab.inventory)])[:2],
        "pyinfra facts": lambda: timed([str(BENCH_BIN / "pyinfra"), "--parallel", str(args.boards), "-y",
                                        str(pyinfra_inv), "fact", *PYINFRA_FACTS])[:2],
        "ansible setup": lambda: timed([str(BENCH_BIN / "ansible"), "all", "-i", str(ini), "-f", str(args.boards),
                                        "-m", "setup"], env=env)[:2],
    }
    # One warm-up each (page cache, ControlPersist sockets, pyc files), then interleaved rounds.
    for run in runners.values():
        run()
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in runners}
    busy: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            b0, t0 = machine_busy()
            samples[name].append(run())
            b1, t1 = machine_busy()
            busy[name].append(100.0 * (b1 - b0) / max(1, t1 - t0))
    _, _, out = timed([str(ROOT / ".venv/bin/rkdeploy"), "check", "--all", "--json", "--inventory", str(lab.inventory)])
    commands = sorted({b["remote_commands"] for b in json.loads(out)["boards"]})
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
        lab.down()
    floor_median = statistics.median(w for w, _ in samples["floor (ssh, curve25519)"])
    rows = []
    for name, vals in samples.items():
        wall = statistics.median(w for w, _ in vals)
        cpu = statistics.median(c for _, c in vals)
        rows.append({"tool": name, "median_s": round(wall, 3), "vs_floor": round(wall / floor_median, 2),
                     "own_cpu_s": round(cpu, 2), "machine_cpu_busy_pct": round(statistics.median(busy[name]))})
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
              f"{platform.platform()}", "boards": args.boards, "rounds": args.rounds,
              "rkdeploy_remote_commands_per_board": commands, "pyinfra_facts": PYINFRA_FACTS, "results": rows}
    print(json.dumps(report, indent=1))
    out_dir = ROOT / "benchmarks/results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"fleet_check-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(main())
