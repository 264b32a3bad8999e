"""rknn_server on a board, the board's own way: started by Rockchip's start_rknn.sh loop or by a systemd unit,
restarted after the runtime changes, made to survive reboots (`--persist`), and `inv server.*`. Shared by
provision (after installing), perf (a stopped server is started in preflight) and the server tasks."""
from __future__ import annotations

from .facts import BoardFacts
from .fleet import CHANGED, FAILED, OK, BoardResult
from .gather import gather_facts
from .lock import BoardLock
from .probe import PID_FUNCTION
from .remote import script
from .session import BoardSession


class ServerError(RuntimeError):
    pass


UNIT = """[Unit]
Description=Rockchip rknn_server (installed by rkdeploy)
After=network.target

[Service]
ExecStart=/usr/bin/rknn_server
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


_PERSIST = """set -e
printf '%s' "$unit" > /etc/systemd/system/.rknn_server.service.tmp
mv -f /etc/systemd/system/.rknn_server.service.tmp /etc/systemd/system/rknn_server.service
systemctl daemon-reload
killall start_rknn.sh > /dev/null 2>&1 || true
systemctl enable rknn_server.service
"""


def persist_script() -> str:
    """As root: a systemd unit for rknn_server, taking over from a start_rknn.sh loop."""
    return script(_PERSIST, unit=UNIT)


# Rockchip's scripts find each other and rknn_server on PATH (restart_rknn.sh runs `start_rknn.sh &`, which
# runs `rknn_server`): their folder goes first on it, /oem/usr/bin on RV1103/RV1106 boards; a server there
# finds the mini runtime in /oem/usr/lib. pgrep where the board has it, else pidof (PID_FUNCTION).
_SERVER_START_RKNN = PID_FUNCTION + """PATH="$bindir:$PATH"; export PATH
case "$bindir" in /oem/*) LD_LIBRARY_PATH="/oem/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; export LD_LIBRARY_PATH;; esac
if [ -x "$bindir/restart_rknn.sh" ]; then setsid "$bindir/restart_rknn.sh" > /dev/null 2>&1 < /dev/null
else killall rknn_server > /dev/null 2>&1; setsid "$bindir/start_rknn.sh" > /dev/null 2>&1 < /dev/null & fi
for i in 1 2 3 4 5 6 7 8 9 10; do [ -n "$(rkd_pid rknn_server)" ] && exit 0; sleep 1; done
echo 'rknn_server did not start' >&2; exit 6
"""
_SERVER_STOP = {
    "systemd": "systemctl stop rknn_server.service\n",
    "start_rknn.sh": PID_FUNCTION + "killall start_rknn.sh > /dev/null 2>&1; killall rknn_server > /dev/null 2>&1\n"
                     "for i in 1 2 3 4 5; do [ -n \"$(rkd_pid rknn_server)\" ] || exit 0; sleep 1; done; exit 6\n",
}


def server_dir_of(facts: BoardFacts) -> str:
    """The folder of the board's rknn_server (and Rockchip's scripts beside it): /usr/bin unless it is elsewhere."""
    return facts.server.path.rsplit("/", 1)[0] if facts.server and "/" in facts.server.path else "/usr/bin"


def server_script(manager: str, bindir: str = "/usr/bin") -> str:
    """Restart rknn_server the board's way, detached from this SSH session."""
    if manager == "systemd":
        return script("systemctl restart rknn_server.service\n")
    return script(_SERVER_START_RKNN, bindir=bindir)


def server_stop_script(manager: str) -> str:
    return script(_SERVER_STOP["systemd" if manager == "systemd" else "start_rknn.sh"])


def manager_of(facts: BoardFacts) -> str:
    """How the board runs rknn_server: "systemd" where a unit exists, else Rockchip's "start_rknn.sh" loop."""
    return "systemd" if facts.server_unit else "start_rknn.sh"


def server_job(action: str, *, lock_wait: float):
    """start / stop / restart / status of rknn_server, the board's way."""
    def job(session: BoardSession) -> BoardResult:
        facts = gather_facts(session)
        manager = manager_of(facts)
        state = {"running": facts.server_running, "pid": facts.server_pid, "manager": facts.server_manager or manager,
                 "version": str(facts.server_version) if facts.server_version else None}
        if action == "status":
            return BoardResult(session.board.name, OK, data=state)
        if facts.server is None:
            return BoardResult(session.board.name, FAILED, error="rknn_server is not installed (inv provision)")
        if action == "start" and facts.server_running:
            return BoardResult(session.board.name, OK, data=state)
        if action == "stop" and not facts.server_running:
            return BoardResult(session.board.name, OK, data=state)
        with BoardLock(session, lock_wait):
            body = server_stop_script(manager) if action == "stop" else server_script(manager, server_dir_of(facts))
            result = session.run_as_root(body)
            if result.return_code != 0:
                raise ServerError(f"rknn_server {action} failed: {result.stderr.strip()}")
            after = gather_facts(session)
        return BoardResult(session.board.name, CHANGED, data={**state, "running": after.server_running,
                                                               "pid": after.server_pid})
    return job
