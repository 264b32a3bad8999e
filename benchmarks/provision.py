"""Provisioning fresh emulated lab boards, rkdeploy against an equivalent Ansible playbook
(benchmarks/ansible/provision.yml), first run and no-change re-run, in one run (root, on demand):

    bash benchmarks/setup.sh && .venv/bin/python -m benchmarks.provision --boards 8

Each tool gets freshly booted boards. Bytes are what crossed the boards' links towards the boards
(host-side veth tx counters), so both tools are measured the same way.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from tests.lab.fleet import Lab
from tests.lab.sdk import cached_tree

ROOT = Path(__file__).resolve().parents[1]


def tx_bytes(lab: Lab) -> int:
    return sum(int(Path(f"/sys/class/net/{b.veth}/statistics/tx_bytes").read_text()) for b in lab.boards())


def measured(lab: Lab, argv: list[str], cwd: Path, env=None) -> dict:
    before, t0 = tx_bytes(lab), time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    return {"seconds": round(wall, 2), "mbytes_to_boards": round((tx_bytes(lab) - before) / 1e6, 2), "out": proc.stdout}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=8)
    args = ap.parse_args()
    work = Path("/var/tmp/rkdeploy-bench-provision")
    work.mkdir(exist_ok=True)
    rk = str(ROOT / ".venv/bin/rkdeploy")
    subprocess.run([rk, "bundle.import", str(cached_tree("2.3.2")), "--python", "3.11"], cwd=work, check=True,
                   capture_output=True)
    bundle = work / "bundles/2.3.2"
    results = {}
    lab = Lab("bprov")
    for tool in ("rkdeploy", "ansible"):
        lab.down()
        lab.up(profiles=["rk3588-fresh"] * args.boards)
        try:
            if tool == "rkdeploy":
                argv = [rk, "provision", "--all", "--bundle", "2.3.2", "--json", "--inventory", str(lab.inventory)]
                env = None
            else:
                ini = work / "hosts.ini"
                ini.write_text("[lab]\n" + "".join(f"{b.name} ansible_host={b.ip}\n" for b in lab.boards()) +
                               f"[lab:vars]\nansible_user=rock\nansible_ssh_private_key_file={lab.key}\n"
                               "ansible_python_interpreter=/usr/bin/python3\n"
                               f"ansible_ssh_common_args='-o UserKnownHostsFile={lab.known_hosts}'\n")
                argv = [str(ROOT / ".bench-venv/bin/ansible-playbook"), "-i", str(ini), "-f", str(args.boards),
                        str(ROOT / "benchmarks/ansible/provision.yml"), "-e", f"bundle={bundle}", "-e", "tag=cp311"]
                env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_LOCAL_TEMP=str(work / "ans-tmp"))
            first = measured(lab, argv, work, env)
            again = measured(lab, argv, work, env)
            entry = {"first": {k: v for k, v in first.items() if k != "out"},
                     "rerun": {k: v for k, v in again.items() if k != "out"}}
            if tool == "rkdeploy":
                doc = json.loads(again["out"])
                entry["rerun"]["remote_commands_per_board"] = sorted({b["remote_commands"] for b in doc["boards"]})
                entry["first"]["remote_commands_per_board"] = sorted(
                    {b["remote_commands"] for b in json.loads(first["out"])["boards"]})
            else:
                entry["rerun"]["recap"] = [line for line in again["out"].splitlines() if "changed=" in line][:1]
            results[tool] = entry
        finally:
            lab.down()
    r, a = results["rkdeploy"], results["ansible"]
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "boards": args.boards, "results": results,
              "ansible_over_rkdeploy_first": round(a["first"]["seconds"] / r["first"]["seconds"], 2),
              "ansible_over_rkdeploy_rerun": round(a["rerun"]["seconds"] / r["rerun"]["seconds"], 2)}
    print(json.dumps(report, indent=1))
    (ROOT / "benchmarks/results").mkdir(exist_ok=True)
    (ROOT / f"benchmarks/results/provision-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
