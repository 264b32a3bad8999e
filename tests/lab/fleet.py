"""Bring a fleet of lab boards up and down.

One board = one network namespace on the lab's private bridge, plus a reaper
process as PID 1 of its own PID, mount and UTS namespaces. Inside those, the
board's root is an overlay (per-board upper on a size-limited tmpfs, so a
filesystem can really fill up) over the shared arm64 rootfs, and the rootfs's
own sshd runs under qemu-user. Killing the one process we started (by PID)
ends the whole board: its processes, mounts and tmpfs go with its namespaces.

`native=True` boards run the host's x86 sshd instead (no emulation): cheap
boards for scale benchmarks.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from . import rootfs, rootfs_buildroot, sdk
from .host import CACHE_DIR, LabError, require_root, run

PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILES = ["rk3588-fresh", "rk3588-field", "rk3588-mismatch", "rk3568-fresh"]
LAB_ROOT = Path(os.environ.get("RKDEPLOY_LAB_DIR", "/var/lib/rkdeploy-lab"))
BINFMT_NAMES = {"aarch64": "rkdeploy-lab-aarch64", "arm": "rkdeploy-lab-arm"}
BOARD_FS_SIZE = "768m"
# A profile's `rootfs:` names its root filesystem: Debian bookworm arm64 (the default) or the busybox armhf
# userland of RV1103/RV1106 boards (rootfs_buildroot.py).
ROOTFS = {"debian-arm64": rootfs, "buildroot-armhf": rootfs_buildroot}


def load_profile(name: str) -> dict:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise LabError(f"no board profile {name!r} (profiles: {known})")
    profile = yaml.safe_load(path.read_text()) or {}
    profile["name"] = name
    profile.setdefault("installed", {})
    return profile


@dataclass
class Board:
    name: str
    profile: str
    ip: str
    netns: str
    veth: str
    dir: str
    native: bool
    pid: int = 0

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def merged(self) -> Path:
        return self.path / "merged"


class Lab:
    """A named lab (the demo and the test suite each have their own) with its own /24."""

    def __init__(self, name: str = "demo", subnet: int | None = None):
        if not name.isalnum() or len(name) > 6:
            raise LabError("a lab name is 1-6 letters or digits")
        self.name = name
        self.dir = LAB_ROOT / name
        self.bridge = f"rkl{name}"
        self._subnet_asked = subnet is not None
        taken = _subnets_in_use(exclude=name)
        if self.state_file.exists():
            subnet = json.loads(self.state_file.read_text())["subnet"]
        elif subnet is None:
            subnet = min(set(range(200)) - set(taken.values()))
        if subnet in taken.values() and not self.state_file.exists():
            other = next(n for n, s in taken.items() if s == subnet)
            raise LabError(f"subnet 10.213.{subnet}.0/24 is used by lab {other!r}: pick another subnet")
        self.subnet = subnet
        self.gateway = f"10.213.{subnet}.1"

    # -- paths the rest of the tool uses, exactly as a user would --------------------------------
    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def boards(self) -> list[Board]:
        if not self.state_file.exists():
            return []
        return [Board(**b) for b in json.loads(self.state_file.read_text())["boards"]]

    def board(self, name: str) -> Board:
        for b in self.boards():
            if b.name == name:
                return b
        raise LabError(f"lab {self.name!r} has no board {name!r}")

    def _save(self, boards: list[Board]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"subnet": self.subnet, "boards": [asdict(b) for b in boards]}, indent=1))
        tmp.rename(self.state_file)

    # -- up ---------------------------------------------------------------------------------------
    def up(self, profiles: list[str] | None = None, boards: int | None = None, native: bool = False,
           timeout: float = 90.0) -> list[Board]:
        require_root()
        if self.boards():
            raise LabError(f"lab {self.name!r} is already up: run lab.down first")
        if profiles is None:
            count = boards or len(DEFAULT_PROFILES)
            profiles = [DEFAULT_PROFILES[i % len(DEFAULT_PROFILES)] for i in range(count)]
        loaded = [load_profile(p) for p in profiles]
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"rkdeploy-lab-{self.name}", "-f", str(self.key)])
        kinds = {p.get("rootfs", "debian-arm64") for p in loaded}
        unknown = kinds - set(ROOTFS)
        if unknown:
            raise LabError(f"unknown rootfs {', '.join(sorted(unknown))} in a profile (known: {', '.join(ROOTFS)})")
        lowers = {} if native else {kind: ROOTFS[kind].ensure_unpacked() for kind in kinds}
        reaper = _reaper_binary()
        if not native:
            for kind in kinds:
                ROOTFS[kind].ensure_binfmt()
            if "debian-arm64" in kinds:
                _register_setuid_binfmt("aarch64")
            if "buildroot-armhf" in kinds:
                _register_setuid_binfmt("arm")
        fleet: list[Board] = []
        try:
            self._reserve_subnet()
            self._bridge_up()
            for i, profile in enumerate(loaded, start=1):
                fleet.append(Board(name=f"box{i}", profile=profile["name"], ip=f"10.213.{self.subnet}.{10 + i}",
                                   netns=f"rkl-{self.name}-box{i}", veth=f"rkl{self.subnet}b{i}",
                                   dir=str(self.dir / "boards" / f"box{i}"), native=native))
            self._save(fleet)  # before anything runs, so a crash mid-way can still be torn down
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda bp: self._prepare(bp[0], bp[1], lowers.get(bp[1].get("rootfs", "debian-arm64"))),
                              zip(fleet, loaded)))
            for board in fleet:
                board.pid = self._start(board, reaper)
                self._save(fleet)
            self._write_access_files(fleet)
            deadline = time.monotonic() + timeout
            for board in fleet:
                _wait_for_ssh(board, deadline)
        except BaseException:
            self.down()
            raise
        return fleet

    def _reserve_subnet(self) -> None:
        """Labs set up at the same time (two processes) could pick the same free /24 in __init__: under a lock,
        pick again if another lab took it since, and reserve it by writing this lab's state file."""
        LAB_ROOT.mkdir(parents=True, exist_ok=True)
        with open(LAB_ROOT / ".subnets.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            taken = _subnets_in_use(exclude=self.name)
            if self.subnet in taken.values():
                if self._subnet_asked:
                    other = next(n for n, s in taken.items() if s == self.subnet)
                    raise LabError(f"subnet 10.213.{self.subnet}.0/24 is used by lab {other!r}: pick another subnet")
                self.subnet = min(set(range(200)) - set(taken.values()))
                self.gateway = f"10.213.{self.subnet}.1"
            self._save([])

    def _bridge_up(self) -> None:
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
            run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])

    def _prepare(self, board: Board, profile: dict, lower: Path | None) -> None:
        """Network plumbing and the board's seed files (copied into its tmpfs upper at boot)."""
        run(["ip", "netns", "add", board.netns])
        run(["ip", "link", "add", board.veth, "type", "veth", "peer", "name", "eth0", "netns", board.netns])
        run(["ip", "link", "set", board.veth, "master", self.bridge, "up"])
        run(["ip", "-n", board.netns, "addr", "add", f"{board.ip}/24", "dev", "eth0"])
        run(["ip", "-n", board.netns, "link", "set", "eth0", "up"])
        run(["ip", "-n", board.netns, "link", "set", "lo", "up"])
        shutil.rmtree(board.path, ignore_errors=True)
        board.path.mkdir(parents=True)
        hostkey = board.path / "ssh_host_ed25519_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", board.name, "-f", str(hostkey)])
        if board.native:
            _prepare_native(board, profile, self.key.with_suffix(".pub"))
        else:
            _prepare_emulated(board, profile, lower, self.key.with_suffix(".pub"))

    def _start(self, board: Board, reaper: Path) -> int:
        log = open(board.path / "console.log", "ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", board.netns, "unshare", "--mount", "--uts", "--pid", "--fork",
             "--kill-child", str(reaper), "/bin/sh", str(board.path / "init.sh")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        return proc.pid

    def _write_access_files(self, fleet: list[Board]) -> None:
        lines = []
        for b in fleet:
            pub = (b.path / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{b.ip} {pub[0]} {pub[1]}\n")
        self.known_hosts.write_text("".join(lines))
        boards = {}
        for b in fleet:
            profile = load_profile(b.profile)
            boards[b.name] = {"host": b.ip, "soc": profile.get("soc"), "adb": f"{b.ip}:5555",
                              "groups": ["lab", profile.get("soc", "unknown")],
                              "vars": {"lab_profile": b.profile}}
            if profile.get("login_user", "rock") != "rock":
                boards[b.name]["user"] = profile["login_user"]
        doc = {
            "settings": {"known_hosts": str(self.known_hosts), "connect_timeout": 30},
            "defaults": {"user": "rock", "port": 22, "key": str(self.key)},
            "boards": boards,
        }
        kind = "native x86 sshd" if any(b.native for b in fleet) else "emulated"
        header = (f"# Written by `inv lab.up` for lab {self.name!r}: {len(fleet)} {kind} boards.\n"
                  "# Use it as any inventory: inv check --all --inventory THIS_FILE\n")
        self.inventory.write_text(header + yaml.safe_dump(doc, sort_keys=False))

    # -- down -------------------------------------------------------------------------------------
    def down(self) -> None:
        """Remove every process, namespace, link and directory this lab made, and nothing else."""
        for board in self.boards():
            if board.pid and _is_ours(board.pid, board):
                try:
                    os.killpg(board.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _wait_gone(board.pid)
            if Path(f"/run/netns/{board.netns}").exists():
                run(["ip", "netns", "del", board.netns], check=False)
            if Path(f"/sys/class/net/{board.veth}").exists():
                run(["ip", "link", "del", board.veth], check=False)
        # Board processes whose state was lost (a crash between start and save, or a state file removed by
        # another run): recognised by this lab's own board path in their command line, ended by PID.
        marker = f"{self.dir}/boards/".encode()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    argv = (proc / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if argv and argv[0] == b"unshare" and any(marker in a for a in argv):
                    try:
                        os.kill(int(proc.name), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if Path(f"/sys/class/net/{self.bridge}").exists():
            run(["ip", "link", "del", self.bridge], check=False)
        shutil.rmtree(self.dir / "boards", ignore_errors=True)
        for f in (self.state_file, self.inventory, self.known_hosts, self.key, self.key.with_suffix(".pub")):
            f.unlink(missing_ok=True)
        try:
            self.dir.rmdir()                       # only if nothing else (a user's file) is in it
        except OSError:
            pass
        if not any(p.exists() for p in LAB_ROOT.glob("*/state.json")):
            _unregister_setuid_binfmt()

    def status(self) -> list[dict]:
        rows = []
        for b in self.boards():
            alive = bool(b.pid) and _is_ours(b.pid, b)
            rows.append({"board": b.name, "profile": b.profile, "ip": b.ip, "native": b.native,
                         "running": alive, "ssh": alive and _ssh_banner(b.ip, 2.0)})
        return rows

    # -- board processes ------------------------------------------------------------------------
    def board_exec(self, board: Board, command: str) -> subprocess.CompletedProcess:
        """Run a host shell command inside a board's namespaces (not its chroot)."""
        child = _reaper_pid(board)
        return run(["nsenter", "-t", str(child), "-m", "-p", "-u", "-n", "/bin/sh", "-c", command])

    def board_root_exec(self, board: Board, command: str) -> subprocess.CompletedProcess:
        """Run a command as root inside the board (its own root filesystem)."""
        return self.board_exec(board, f"chroot {board.merged} /bin/sh -c {shlex.quote(command)}")


def _subnets_in_use(exclude: str) -> dict[str, int]:
    """Subnets of the labs that are up, by lab name: two labs on one /24 would steal each other's routes."""
    used = {}
    for state in LAB_ROOT.glob("*/state.json"):
        if state.parent.name != exclude:
            try:
                used[state.parent.name] = json.loads(state.read_text())["subnet"]
            except (OSError, ValueError, KeyError):
                continue
    return used


def _prepare_emulated(board: Board, profile: dict, lower: Path, client_pub: Path) -> None:
    seed = board.path / "seed"
    (board.path / "merged").mkdir()
    (board.path / "seed-fs").mkdir()
    buildroot = profile.get("rootfs") == "buildroot-armhf"
    if not buildroot:                   # the busybox rootfs has root only
        uid, gid = _user_ids(lower, "rock")
        ssh_dir = seed / "home/rock/.ssh"
        ssh_dir.mkdir(parents=True)
        shutil.copy(client_pub, ssh_dir / "authorized_keys")
        for p in (seed / "home/rock", ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(p, uid, gid)
        (seed / "home/rock").chmod(0o755)
        ssh_dir.chmod(0o700)
    (seed / "etc/ssh").mkdir(parents=True)
    for suffix in ("", ".pub"):
        shutil.copy(board.path / f"ssh_host_ed25519_key{suffix}", seed / f"etc/ssh/ssh_host_ed25519_key{suffix}")
    (seed / "etc/ssh/ssh_host_ed25519_key").chmod(0o600)
    (seed / "etc/hostname").write_text(board.name + "\n")
    (seed / "etc/hosts").write_text(f"127.0.0.1 localhost\n{board.ip} {board.name}\n")
    _install_profile_sdk(seed, profile)
    if profile.get("device_tree_preload", True):
        # LAB ADAPTATION (docs/toolkit-and-adb.md §8): the board's /proc is the host kernel's, without
        # /proc/device-tree, which rknn-toolkit-lite2 reads to find the SoC and the NPU. A preload library
        # (tests/lab/standins/dtmap.c) maps that path to /sys/firmware/devicetree/base for every program.
        (seed / "usr/lib/rkdeploy-lab").mkdir(parents=True, exist_ok=True)
        shutil.copy(sdk.dtmap_library(), seed / "usr/lib/rkdeploy-lab/libdtmap.so")
        (seed / "etc/ld.so.preload").write_text("/usr/lib/rkdeploy-lab/libdtmap.so\n")
    if profile.get("sudo_password"):
        _require_sudo_password(seed, lower, str(profile["sudo_password"]))
    if profile.get("sudo_rights") is False:
        _without_sudo_rights(seed, lower)
    if profile.get("login_user", "rock") == "root":
        _allow_root_login(seed, client_pub)
    if profile.get("libc") == "uclibc":
        _uclibc_standin(seed)
    lab_etc = seed / "etc/rkdeploy-lab"
    lab_etc.mkdir(parents=True, exist_ok=True)
    (lab_etc / "profile").write_text(profile["name"] + "\n")
    autostart = profile.get("server_running") and profile["installed"].get("server")
    adbd = profile.get("adbd", True)
    if adbd:
        # The lab's adbd stand-in (tests/lab/adbd.py): network adb on TCP 5555, as root, as on a vendor image
        # with `setprop service.adb.tcp.port 5555`. --map-path is a lab adaptation: the board's /proc is the
        # host kernel's (no device tree), its DT is at /sys/firmware/devicetree/base, and rknn-toolkit2 runs
        # `adb shell cat /proc/device-tree/compatible` (docs/toolkit-and-adb.md §3).
        shutil.copy(Path(__file__).with_name("adbd.py"), lab_etc / "adbd.py")
        soc = profile.get("soc", "rk3588")
        # its own file: boot.sh sources it, faults.start_adbd runs it again after faults.stop_adbd
        (lab_etc / "adbd-start.sh").write_text(
            f"setsid python3 /etc/rkdeploy-lab/adbd.py --port 5555 --log /var/log/adbd-lab.log "
            f"--product-name {soc}_lab --product-device {soc}_lab "
            "--map-path /proc/device-tree=/sys/firmware/devicetree/base "
            "> /var/log/adbd-lab.console 2>&1 < /dev/null &\necho $! > /run/adbd-lab.pid\n")
    # dropbear (the busybox boards' SSH server) takes the board's OpenSSH host key converted to its own format.
    ssh_server = ("mkdir -p /etc/dropbear\n/usr/lib/dropbear/dropbearconvert openssh dropbear "
                  "/etc/ssh/ssh_host_ed25519_key /etc/dropbear/dropbear_ed25519_host_key > /dev/null 2>&1\n"
                  "echo $$ > /run/lab-sshd.pid\nexec /usr/sbin/dropbear -F -E -s -r /etc/dropbear/dropbear_ed25519_host_key -p 22\n"
                  if buildroot else "echo $$ > /run/lab-sshd.pid\nexec /usr/sbin/sshd -D -e\n")
    (lab_etc / "boot.sh").write_text(
        "#!/bin/sh\n# Board boot (lab): what the vendor image's init would start, then the SSH server.\n"
        + ("setsid /usr/bin/start_rknn.sh > /var/log/rknn_server.log 2>&1 < /dev/null &\n" if autostart else "")
        + (". /etc/rkdeploy-lab/adbd-start.sh\n" if adbd else "")
        + ssh_server)
    # Identity a probe reads: /sys/firmware/devicetree/base (= /proc/device-tree on a real board)
    # and the root-only debugfs file of the NPU driver.
    dt = board.path / "firmware/devicetree/base"
    dt.mkdir(parents=True)
    (dt / "compatible").write_bytes(b"".join(c.encode() + b"\0" for c in profile.get("compatible", [])))
    (dt / "model").write_bytes(profile.get("model", "").encode() + b"\0")
    # STAND-IN cpufreq policies (the lab's kernel has none): what eval_perf(fix_freq=True) rewrites on a
    # real board, so that saving and restoring governors can be exercised over SSH.
    for policy in profile.get("cpufreq_policies", []):
        (board.path / "cpufreq" / policy).mkdir(parents=True)
        (board.path / "cpufreq" / policy / "scaling_governor").write_text("schedutil\n")
    (board.path / "cpufreq").mkdir(exist_ok=True)
    debug = board.path / "debug"
    (debug / "rknpu").mkdir(parents=True)
    debug.chmod(0o700)
    if profile.get("npu_driver"):
        (debug / "rknpu/version").write_text(f"RKNPU driver: v{profile['npu_driver']}\n")
    nodes = "\n".join(
        # Stand-in NPU device nodes: the numbers of /dev/null, the names and group of the real ones.
        f"mkdir -p $M{os.path.dirname(n)}; mknod -m 660 $M{n} c 1 3; chgrp {_group_id(lower, 'render' if 'dri' in n else 'video')} $M{n}"
        for n in profile.get("npu_nodes", []))
    # Profile `without: [strings]`: removed from this board's overlay (a whiteout in its upper layer), as
    # on vendor images without binutils.
    remove = "\n".join(f"rm -f $M/usr/bin/{shlex.quote(tool)}" for tool in profile.get("without", []))
    (board.path / "init.sh").write_text(f"""#!/bin/sh
# Lab board {board.name} ({profile['name']}): runs as PID 1's child in the board's own namespaces.
set -e
B={board.path}
M=$B/merged
hostname {board.name}
mount -t tmpfs -o size={BOARD_FS_SIZE},mode=755 boardfs $B/seed-fs
mkdir $B/seed-fs/upper $B/seed-fs/work
cp -a $B/seed/. $B/seed-fs/upper/
mount -t overlay overlay -o lowerdir={lower},upperdir=$B/seed-fs/upper,workdir=$B/seed-fs/work $M
mount -t proc proc $M/proc
mount -t sysfs sysfs $M/sys
mount --bind $B/firmware $M/sys/firmware
mount --bind $B/debug $M/sys/kernel/debug
[ -d $M/sys/devices/system/cpu/cpufreq ] && mount --bind $B/cpufreq $M/sys/devices/system/cpu/cpufreq
mount -t tmpfs -o mode=755,size=16m devfs $M/dev
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read n a b <<EOF
$d
EOF
  mknod -m 666 $M/dev/$n c $a $b
done
mkdir $M/dev/pts $M/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts $M/dev/pts
ln -s pts/ptmx $M/dev/ptmx
ln -s /proc/self/fd $M/dev/fd
mount -t tmpfs -o mode=1777 shm $M/dev/shm
{nodes}
{remove}
mount -t tmpfs -o mode=755,size=16m run $M/run
mkdir -p $M/run/sshd $M/run/lock && chmod 1777 $M/run/lock
exec chroot $M /bin/sh /etc/rkdeploy-lab/boot.sh
""")


def _prepare_native(board: Board, profile: dict, client_pub: Path) -> None:
    # The profile's identity and runtime, where a probe looks: /sys/firmware/devicetree/base and
    # /usr/local/lib (bind-mounted in the board's own mount namespace; the host's stay untouched).
    dt = board.path / "firmware/devicetree/base"
    dt.mkdir(parents=True)
    (dt / "compatible").write_bytes(b"".join(c.encode() + b"\0" for c in profile.get("compatible", [])))
    (dt / "model").write_bytes(profile.get("model", "").encode() + b"\0")
    (board.path / "local-lib").mkdir()
    if profile["installed"].get("runtime"):
        runtime, _ = sdk.board_runtime(str(profile["installed"]["runtime"]), soc=profile.get("soc", "rk3588"))
        shutil.copy(runtime, board.path / "local-lib/librknnrt.so")
    home = board.path / "home/rock"
    home.mkdir(parents=True)
    shutil.copy(client_pub, board.path / "authorized_keys")
    (board.path / "authorized_keys").chmod(0o644)
    os.chown(home, 4242, 4242)
    (board.path / "passwd").write_text(Path("/etc/passwd").read_text() + "rock:x:4242:4242:lab board:/home/rock:/bin/sh\n")
    (board.path / "group").write_text(Path("/etc/group").read_text() + "rock:x:4242:\n")
    shadow = Path("/etc/shadow").read_text() if Path("/etc/shadow").exists() else ""
    (board.path / "shadow").write_text(shadow + "rock:*:19000:0:99999:7:::\n")
    (board.path / "shadow").chmod(0o640)
    (board.path / "sshd_config").write_text(f"""# Native (x86, no emulation) lab board for scale benchmarks.
ListenAddress {board.ip}
HostKey {board.path}/ssh_host_ed25519_key
AuthorizedKeysFile {board.path}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
UseDNS no
MaxStartups 100:30:200
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
""")
    (board.path / "init.sh").write_text(f"""#!/bin/sh
set -e
B={board.path}
hostname {board.name}
mount --make-rprivate /
mount --bind $B/passwd /etc/passwd
mount --bind $B/group /etc/group
mount --bind $B/shadow /etc/shadow
mount -t proc proc /proc
mount -t tmpfs -o mode=755 run /run
mkdir -p /run/sshd /home
mount --bind $B/home /home
mount --bind $B/firmware /sys/firmware
mount --bind $B/local-lib /usr/local/lib
mkdir -p /run/lock && chmod 1777 /run/lock
exec /usr/sbin/sshd -D -e -f $B/sshd_config
""")


def _uclibc_standin(seed: Path) -> None:
    """Profile `libc: uclibc`: the LABELLED STAND-IN /lib/ld-uClibc.so.0 (standins/uclibc_loader.c). Debian has
    no uClibc; with this file the board is a uClibc board to anything that looks (the probe, provision's choice
    of the armhf-uclibc files), and a uClibc program started on it (Rockchip's rknn_server) is replaced by the
    program of its name in /etc/rkdeploy-lab/uclibc/ (standins/uclibc_rknn_server.c), or refused with a
    message saying it cannot run in the lab."""
    loader, server = _uclibc_standin_binaries()
    (seed / "lib").mkdir(parents=True, exist_ok=True)
    shutil.copy(loader, seed / "lib/ld-uClibc.so.0")
    (seed / "lib/ld-uClibc.so.0").chmod(0o755)
    folder = seed / "etc/rkdeploy-lab/uclibc"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(server, folder / "rknn_server")
    (folder / "rknn_server").chmod(0o755)


def _uclibc_standin_binaries() -> tuple[Path, Path]:
    standins = Path(__file__).parent / "standins"
    sources = [standins / "uclibc_loader.c", standins / "uclibc_rknn_server.c"]
    tag = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:10]
    out = CACHE_DIR / "bin" / f"uclibc-standin-{tag}"
    loader, server = out / "ld-uClibc.so.0", out / "rknn_server"
    if not (loader.exists() and server.exists()):
        tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.mkdir(parents=True, exist_ok=True)
        # No libc, linked away from 0x10000 where the uClibc program itself is mapped.
        run(["arm-linux-gnueabihf-gcc", "-O1", "-fno-builtin", "-fno-stack-protector", "-ffreestanding", "-nostdlib",
             "-static", "-marm", "-Wl,-Ttext-segment=0x60000000", "-o", str(tmp / "ld-uClibc.so.0"), str(sources[0])])
        run(["arm-linux-gnueabihf-gcc", "-O2", "-static", "-s", "-o", str(tmp / "rknn_server"), str(sources[1])])
        try:
            tmp.rename(out)
        except OSError:               # another thread was first
            shutil.rmtree(tmp, ignore_errors=True)
    return loader, server


def _without_sudo_rights(seed: Path, lower: Path) -> None:
    """Profile `sudo_rights: false`: rock is in no sudoers rule (not in group sudo, no sudoers.d/rock)."""
    (seed / "etc/sudoers.d").mkdir(parents=True, exist_ok=True)
    (seed / "etc/sudoers.d/rock").write_text("# rock may not use sudo on this board (lab profile)\n")
    (seed / "etc/sudoers.d/rock").chmod(0o440)
    lines = []
    for line in (lower / "etc/group").read_text().splitlines():
        name, pw, gid, members = (line.split(":") + [""])[:4]
        if name == "sudo":
            line = ":".join([name, pw, gid, ",".join(m for m in members.split(",") if m and m != "rock")])
        lines.append(line)
    (seed / "etc/group").write_text("\n".join(lines) + "\n")


def _allow_root_login(seed: Path, client_pub: Path) -> None:
    """Profile `login_user: root`: root logs in with the lab's key (the rootfs says PermitRootLogin no; this
    board's own sshd_config.d/lab.conf, in its overlay, says prohibit-password: keys only)."""
    ssh_dir = seed / "root/.ssh"
    ssh_dir.mkdir(parents=True)
    (seed / "root").chmod(0o700)
    ssh_dir.chmod(0o700)
    shutil.copy(client_pub, ssh_dir / "authorized_keys")
    (ssh_dir / "authorized_keys").chmod(0o600)
    conf = seed / "etc/ssh/sshd_config.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "lab.conf").write_text(
        "# rkdeploy lab board (profile login_user: root): key-only logins, root by key too.\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nUseDNS no\nMaxStartups 100:30:200\n")


def _require_sudo_password(seed: Path, lower: Path, password: str) -> None:
    """sudo asks for rock's password on this board (the rootfs default is passwordless)."""
    hashed = run(["openssl", "passwd", "-6", "-stdin"], input=password.encode()).stdout.decode().strip()
    lines = [f"rock:{hashed}:" + line.split(":", 2)[2] if line.startswith("rock:") else line
             for line in (lower / "etc/shadow").read_text().splitlines()]
    (seed / "etc").mkdir(parents=True, exist_ok=True)
    (seed / "etc/shadow").write_text("\n".join(lines) + "\n")
    (seed / "etc/shadow").chmod(0o640)
    os.chown(seed / "etc/shadow", 0, _group_id(lower, "shadow"))
    (seed / "etc/sudoers.d").mkdir(parents=True, exist_ok=True)
    (seed / "etc/sudoers.d/rock").write_text("rock ALL=(ALL) ALL\n")
    (seed / "etc/sudoers.d/rock").chmod(0o440)


def _install_profile_sdk(seed: Path, profile: dict) -> None:
    """Put the profile's preinstalled runtime and server where Rockchip's guides put them: Rockchip's own
    files where they exist (tests/rockchip_files.py), labelled stand-ins where not."""
    installed, soc = profile["installed"], profile.get("soc", "rk3588")
    if installed.get("runtime"):
        runtime, _ = sdk.board_runtime(str(installed["runtime"]), soc=soc)
        (seed / "usr/lib").mkdir(parents=True, exist_ok=True)
        shutil.copy(runtime, seed / "usr/lib/librknnrt.so")
    if installed.get("server"):
        files, _ = sdk.board_server(str(installed["server"]), soc=soc)
        (seed / "usr/bin").mkdir(parents=True, exist_ok=True)
        for name, source in files.items():
            shutil.copy(source, seed / "usr/bin" / name)
            (seed / "usr/bin" / name).chmod(0o755)


def _user_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise LabError(f"the rootfs has no user {user}")


def _group_id(root: Path, group: str) -> int:
    for line in (root / "etc/group").read_text().splitlines():
        f = line.split(":")
        if f[0] == group:
            return int(f[2])
    raise LabError(f"the rootfs has no group {group}")


def _reaper_binary() -> Path:
    src = Path(__file__).parent / "standins/reaper.c"
    out = CACHE_DIR / "bin" / f"lab-reaper-{int(src.stat().st_mtime)}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        run(["gcc", "-O2", "-o", str(out), str(src)])
    return out


def _register_setuid_binfmt(arch: str = "aarch64") -> None:
    """A second qemu entry with the credentials flag (`C`, which implies `O`: qemu gets the binary as an open
    file), newest entry wins, removed when the last lab goes down.

    aarch64: Debian registers qemu without `C`, and setuid programs (sudo) then run unprivileged.
    arm: without `O` a program that re-executes itself through a close-on-exec descriptor (`fexecve`, as
    dropbear does for every connection) dies in the exec: the kernel cannot hand qemu that path.
    """
    misc = Path("/proc/sys/fs/binfmt_misc")
    name = BINFMT_NAMES[arch]
    if (misc / name).exists():
        return
    info = (misc / f"qemu-{arch}").read_text()
    fields = dict(line.split(" ", 1) for line in info.splitlines() if " " in line)
    magic, mask = fields["magic"], fields["mask"]
    interpreter = fields["interpreter"]
    hexesc = lambda h: "".join(f"\\x{h[i:i + 2]}" for i in range(0, len(h), 2))  # noqa: E731
    (misc / "register").write_text(f":{name}:M::{hexesc(magic)}:{hexesc(mask)}:{interpreter}:POCF")


def _unregister_setuid_binfmt() -> None:
    for name in BINFMT_NAMES.values():
        entry = Path("/proc/sys/fs/binfmt_misc") / name
        if entry.exists():
            entry.write_text("-1")


def _is_ours(pid: int, board: Board) -> bool:
    """The PID still belongs to the board process we started (not a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(board.path / "init.sh").encode() in cmdline


def _reaper_pid(board: Board) -> int:
    """Host PID of the board's PID 1 (the child of the unshare process we started)."""
    children = Path(f"/proc/{board.pid}/task/{board.pid}/children").read_text().split()
    if not children:
        raise LabError(f"board {board.name} is not running")
    return int(children[0])


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)


def _ssh_banner(ip: str, timeout: float) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Running (not a zombie). Unlike the cmdline, this is readable while the process execs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_for_ssh(board: Board, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not _alive(board.pid):
            log = (board.path / "console.log").read_text(errors="replace")[-1500:]
            raise LabError(f"board {board.name} died while booting:\n{log}")
        if _ssh_banner(board.ip, 2.0):
            return
        time.sleep(0.2)
    raise LabError(f"board {board.name} did not answer SSH in time")
