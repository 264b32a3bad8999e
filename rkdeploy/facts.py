"""What a board is and has, as read by the probe: the one typed record every task works from."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .socs import KNOWN_SOCS
from .versions import ComponentVersion


LIBCS = ("glibc", "uclibc", "musl")


@dataclass
class InstalledFile:
    path: str
    sha256: str = ""
    size: int = 0
    is_elf: bool = True
    version: ComponentVersion | None = None


@dataclass
class NpuNode:
    path: str
    group: str
    mode: str


@dataclass
class BoardFacts:
    arch: str = ""
    os: str = ""
    kernel: str = ""
    libc: str = ""                       # "glibc", "uclibc", "musl" (by the program loader), "" when unknown
    hostname: str = ""
    user: str = ""
    user_groups: list[str] = field(default_factory=list)
    root_mode: str = ""                  # how root is reached: session.ROOT_MODES ("" when the probe did not look)
    root_password: str = ""              # sudo-password only: "" (none given), "ok", "refused", "uncached"
    sudo: str = ""                       # derived, for reports: "root", "ok" (root reached), "no"
    compatible: list[str] = field(default_factory=list)
    model: str = ""
    npu_driver: ComponentVersion | None = None
    npu_nodes: list[NpuNode] = field(default_factory=list)
    runtime: InstalledFile | None = None          # the one the loader finds first
    runtimes: list[InstalledFile] = field(default_factory=list)
    server: InstalledFile | None = None
    server_running: bool = False
    server_pid: int | None = None
    server_manager: str = ""             # "systemd", "start_rknn.sh" or "" (not managed)
    server_unit: bool = False            # a rknn_server.service unit exists
    systemd: bool = False                # systemd is the board's init
    files: dict[str, str] = field(default_factory=dict)   # path -> sha256 of other managed files
    lite2: ComponentVersion | None = None
    python: str = ""
    python_tag: str = ""                 # e.g. cp311
    pip: str = ""
    python_h: bool = False
    gcc: bool = False
    strings: bool = False                # binutils' strings: the real rknn_server runs it to read the runtime version
    disk_free_kb: dict[str, int] = field(default_factory=dict)
    model_dir_state: str = ""            # "writable", "present" (not writable by the user) or "absent"
    model_dir_free_kb: int | None = None
    model_dir_parent_writable: bool = False   # the model directory is absent and the login user can make it
    models_current: dict[str, str] = field(default_factory=dict)     # name -> "versions/<sha12>.rknn"
    model_versions: list[dict] = field(default_factory=list)         # metadata of every kept version
    warnings: list[str] = field(default_factory=list)

    @property
    def soc(self) -> str:
        """The SoC from the device tree (`rockchip,rk3588` → `rk3588`), "" when unknown."""
        for entry in self.compatible:
            vendor, _, name = entry.partition(",")
            if vendor == "rockchip" and name in KNOWN_SOCS:
                return name
        return ""

    @property
    def server_version(self) -> ComponentVersion | None:
        return self.server.version if self.server else None

    @property
    def runtime_version(self) -> ComponentVersion | None:
        return self.runtime.version if self.runtime else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["soc"] = self.soc
        return data
