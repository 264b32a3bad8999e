"""Faults to inject into lab boards: each undoes cleanly, and all vanish with lab.down."""
from __future__ import annotations

from .fleet import Board, Lab
from .host import run


def cut_link(board: Board) -> None:
    """The cable is pulled: packets to and from the board vanish."""
    run(["ip", "link", "set", board.veth, "down"])


def restore_link(board: Board) -> None:
    """Plug the cable back in."""
    run(["ip", "link", "set", board.veth, "up"])


def _ssh_filter(board: Board, action: str) -> None:
    clear_filter(board)
    extra = ["--reject-with", "tcp-reset"] if action == "REJECT" else []
    run(["ip", "netns", "exec", board.netns, "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "22",
         "-j", action, *extra])


def drop_packets(board: Board) -> None:
    """Silently drop SSH packets: a firewall that times connections out."""
    _ssh_filter(board, "DROP")


def reject_packets(board: Board) -> None:
    """Refuse SSH at once (TCP reset)."""
    _ssh_filter(board, "REJECT")


def clear_filter(board: Board) -> None:
    """Remove the drop/reject rules."""
    run(["ip", "netns", "exec", board.netns, "iptables", "-w", "-F", "INPUT"])


def limit_bandwidth(board: Board, rate: str = "100mbit") -> None:
    """Traffic towards the board (uploads) limited with a token bucket on its host-side veth."""
    run(["tc", "qdisc", "replace", "dev", board.veth, "root", "tbf", "rate", rate, "burst", "32kbit",
         "latency", "400ms"])


def clear_bandwidth(board: Board) -> None:
    """Remove the bandwidth limit."""
    run(["tc", "qdisc", "del", "dev", board.veth, "root"], check=False)


def stop_sshd(lab: Lab, board: Board) -> None:
    """sshd (the listener) stops; sessions already open and the rest of the board keep running."""
    lab.board_exec(board, f"pid=$(cat {board.merged}/run/lab-sshd.pid); kill $pid; "
                          "for i in $(seq 50); do kill -0 $pid 2>/dev/null || exit 0; sleep 0.1; done; exit 1")


def start_sshd(lab: Lab, board: Board) -> None:
    """Start sshd again after stop-sshd."""
    lab.board_root_exec(board, "/usr/sbin/sshd -D -e < /dev/null > /dev/null 2>&1 & echo $! > /run/lab-sshd.pid")


def stop_adbd(lab: Lab, board: Board) -> None:
    """The board's network adbd (the lab's, tests/lab/adbd.py) stops; the rest of the board keeps running."""
    lab.board_root_exec(board, "kill $(cat /run/adbd-lab.pid)")


def start_adbd(lab: Lab, board: Board) -> None:
    """Start adbd again after stop_adbd, as the board's boot did (it listens a moment later)."""
    lab.board_root_exec(board, ". /etc/rkdeploy-lab/adbd-start.sh")


def fill_disk(lab: Lab, board: Board) -> None:
    """Fill the board's root filesystem (its size-limited tmpfs upper) to the last byte."""
    lab.board_root_exec(board, "dd if=/dev/zero of=/var/lab-fill bs=1M 2>/dev/null; "
                               "dd if=/dev/zero of=/var/lab-fill-tail bs=1k 2>/dev/null; true")


def free_disk(lab: Lab, board: Board) -> None:
    """Remove what fill-disk wrote."""
    lab.board_root_exec(board, "rm -f /var/lab-fill /var/lab-fill-tail")
