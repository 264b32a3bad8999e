"""`inv lab.*`: bring the emulated board fleet up and down, and inject faults into it."""
from __future__ import annotations

import time

from invoke import Collection, Exit, task

from . import faults
from .fleet import DEFAULT_PROFILES, Lab
from .host import LabError, preflight

LAB_HELP = {"name": "lab name (default: demo; tests use their own)"}


def _lab(name: str) -> Lab:
    return Lab(name or "demo")


@task(help={**LAB_HELP, "boards": "number of boards (profiles cycle through the default four)",
            "profiles": f"comma-separated profiles, one board each (default: {','.join(DEFAULT_PROFILES)})",
            "native": "plain x86 sshd boards, no emulation (for scale benchmarks)"})
def up(c, boards=None, profiles=None, native=False, name="demo"):
    """Start the lab fleet and write its inventory and known_hosts."""
    started = time.monotonic()
    try:
        preflight(native=native)           # the host's tools first: what to install, not a FileNotFoundError later
        lab = _lab(name)
        fleet = lab.up(profiles=profiles.split(",") if profiles else None,
                       boards=int(boards) if boards else None, native=native)
    except LabError as e:
        raise Exit(f"lab.up: {e}", code=1) from None
    for b in fleet:
        print(f"{b.name:6} {b.ip:14} {b.profile}")
    print(f"{len(fleet)} boards up in {time.monotonic() - started:.1f} s")
    print(f"inventory: {lab.inventory}\nknown_hosts: {lab.known_hosts}")
    print(f"try: inv check --all --inventory {lab.inventory}")


@task(help=LAB_HELP)
def down(c, name="demo"):
    """Stop every lab board and remove what the lab made (processes, mounts, namespaces, links)."""
    _lab(name).down()
    print(f"lab {name} is down")


@task(help=LAB_HELP)
def status(c, name="demo"):
    """Show the lab's boards and whether each answers SSH."""
    rows = _lab(name).status()
    if not rows:
        print(f"lab {name} is not up")
    for r in rows:
        print(f"{r['board']:6} {r['ip']:14} {r['profile']:18} {'running' if r['running'] else 'DEAD':8} "
              f"ssh {'up' if r['ssh'] else 'down'}")


def _fault(fn, needs_lab=False, doc=""):
    def body(c, board, name="demo", rate="100mbit"):
        lab = _lab(name)
        try:
            b = lab.board(board)
            if fn is faults.limit_bandwidth:
                fn(b, rate)
            else:
                fn(lab, b) if needs_lab else fn(b)
        except LabError as e:
            raise Exit(str(e), code=1) from None
        print(f"{fn.__name__}: {board}")
    body.__doc__ = doc or fn.__doc__
    body.__name__ = fn.__name__
    return task(body, name=fn.__name__.replace("_", "-"), help={"board": "lab board name (box1…)", **LAB_HELP})


lab = Collection("lab", up, down, status)
for _fn, _needs in [(faults.cut_link, False), (faults.restore_link, False), (faults.drop_packets, False),
                    (faults.reject_packets, False), (faults.clear_filter, False), (faults.limit_bandwidth, False),
                    (faults.clear_bandwidth, False), (faults.stop_sshd, True), (faults.start_sshd, True),
                    (faults.fill_disk, True), (faults.free_disk, True)]:
    lab.add_task(_fault(_fn, _needs))
