"""Defaults for everything configurable; invoke.yaml (or -f FILE / env RKDEPLOY_*) overrides them."""
from __future__ import annotations

from pathlib import Path

from .connection import SshSettings

DEFAULTS = {
    "rkdeploy": {
        "inventory": "inventory/hosts.yaml",
        "known_hosts": "~/.ssh/known_hosts",
        "ssh_config": None,
        "parallel": 32,
        "connect_timeout": 10,
        "command_timeout": 300,
        "connect_retries": 2,
        "keepalive": 3,
        "sdk": None,
        "state_dir": "~/.cache/rkdeploy",
        "bundles_dir": "bundles",
        "bundle": None,
    },
    "perf": {"toolkit_python": None},
}


def ssh_settings(config, inventory_settings: dict, *, accept_new_host_keys: bool = False,
                 sudo_password: str | None = None) -> SshSettings:
    """Inventory `settings:` win over invoke.yaml: an inventory knows its own fleet."""
    rk = config.rkdeploy
    pick = lambda key: inventory_settings.get(key, rk.get(key))  # noqa: E731
    return SshSettings(
        known_hosts=Path(str(pick("known_hosts"))).expanduser(),
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=float(pick("connect_timeout")),
        command_timeout=float(pick("command_timeout")),
        keepalive=int(rk.get("keepalive", 3)),
        retries=int(rk.get("connect_retries", 2)),
        ssh_config=pick("ssh_config"),
        max_output_mib=float(pick("max_output_mib") or 16),
        sudo_password=sudo_password,
    )


def state_dir(config) -> Path:
    return Path(str(config.rkdeploy.get("state_dir") or "~/.cache/rkdeploy")).expanduser()
