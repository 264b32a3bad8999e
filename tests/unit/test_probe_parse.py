"""The probe parser, field by field: probe output as a board prints it (see probe_script()) in, the exact
BoardFacts out. Each case is data: the lines a board sends and what rkdeploy must make of them."""
import pytest

from rkdeploy.facts import BoardFacts, InstalledFile, NpuNode
from rkdeploy.probe import ProbeError, ProbeLinkLost, parse_probe
from rkdeploy.versions import ComponentVersion

RUNTIME_SHA = "c3cc9539522c9ff7ad1051e931f8670cffaba614c5683dd090608ada2bee1968"
SERVER_SHA = "abab53baf119b7c26662ba5b5bebcdf900bab6515ce517c93d59e11df167d974"
START_SHA = "1cb242acbe514a373470e40aea4359140979c4bee1761cb895ad5be19296dc90"
UNIT_SHA = "5517fdcc763b8b20d9f0c5407cf049a9a0c8277f4bb7967a823f2726de559dba"
RUNTIME_STRING = "librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)"
SERVER_STRING = "rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)"
META = '{"name": "det", "sha256": "' + "ab" * 32 + '", "deployed_at": "2026-11-23T10:00:00+00:00"}'

# A Rock 5B on Debian 12 whose login user needs a password for sudo (given), with the server under systemd,
# and a deploy's model section: every line the full probe prints, in the order it prints them.
ROCK5B = f"""compatible=radxa,rock-5b rockchip,rk3588 
model=Radxa ROCK 5B
uname=rock-5b 6.1.43-15-rk2312 aarch64
id=uid=1000(radxa) gid=1000(radxa) groups=1000(radxa),27(sudo),44(video),105(render)
os=Debian GNU/Linux 12 (bookworm)
libc=glibc
root_mode=sudo-password
npu_driver=RKNPU driver: v0.9.8
root_password=ok
sudo=ok
npu_node=/dev/dri/renderD129|render|660
file=/usr/lib/librknnrt.so|7261512|{RUNTIME_SHA}|7f454c46|{RUNTIME_STRING}
file=/usr/bin/rknn_server|1200312|{SERVER_SHA}|7f454c46|{SERVER_STRING}
file=/usr/bin/start_rknn.sh|216|{START_SHA}|23212f62|
file=/etc/systemd/system/rknn_server.service|203|{UNIT_SHA}|5b556e69|
server_pid=812
server_unit=yes
server_manager=systemd
systemd=yes
python=3.11.2
python_tag=cp311
python_h=yes
lite2=2.3.2
pip=23.0.1
gcc=yes
strings=yes
df=/|29144320
df=/usr/lib|29144320
df=/tmp|1978404
df=/var|29144320
model_dir=/opt/rkdeploy/models|writable
model_dir_free=29144320
model_current=det|versions/abababababab.rknn
model_version={META}
end=ok
"""


def test_a_complete_probe_output_reads_as_exactly_the_board_it_describes():
    runtime = InstalledFile(path="/usr/lib/librknnrt.so", sha256=RUNTIME_SHA, size=7261512, is_elf=True,
                            version=ComponentVersion("2.3.2", "429f97ae6b@2025-04-09T09:09:27", RUNTIME_STRING))
    server = InstalledFile(path="/usr/bin/rknn_server", sha256=SERVER_SHA, size=1200312, is_elf=True,
                           version=ComponentVersion("2.3.2", "1842325 build@2025-03-30T09:54:34", SERVER_STRING))
    expected = BoardFacts(
        arch="aarch64", os="Debian GNU/Linux 12 (bookworm)", kernel="6.1.43-15-rk2312", libc="glibc",
        hostname="rock-5b", user="radxa", user_groups=["radxa", "sudo", "video", "render"],
        root_mode="sudo-password", root_password="ok", sudo="ok",
        compatible=["radxa,rock-5b", "rockchip,rk3588"], model="Radxa ROCK 5B",
        npu_driver=ComponentVersion("0.9.8", "", "RKNPU driver: v0.9.8"),
        npu_nodes=[NpuNode(path="/dev/dri/renderD129", group="render", mode="660")],
        runtime=runtime, runtimes=[runtime], server=server, server_running=True, server_pid=812,
        server_manager="systemd", server_unit=True, systemd=True,
        files={"/usr/lib/librknnrt.so": RUNTIME_SHA, "/usr/bin/rknn_server": SERVER_SHA,
               "/usr/bin/start_rknn.sh": START_SHA, "/etc/systemd/system/rknn_server.service": UNIT_SHA},
        lite2=ComponentVersion("2.3.2", "", "2.3.2"), python="3.11.2", python_tag="cp311", pip="23.0.1",
        python_h=True, gcc=True, strings=True,
        disk_free_kb={"/": 29144320, "/usr/lib": 29144320, "/tmp": 1978404, "/var": 29144320},
        model_dir_state="writable", model_dir_free_kb=29144320, model_dir_parent_writable=False,
        models_current={"det": "versions/abababababab.rknn"},
        model_versions=[{"name": "det", "sha256": "ab" * 32, "deployed_at": "2026-11-23T10:00:00+00:00"}],
        warnings=[])
    facts = parse_probe(ROCK5B)
    assert facts == expected
    assert facts.soc == "rk3588"


def test_the_same_output_as_bytes_or_a_bytearray_from_the_channel_reads_the_same():
    assert parse_probe(ROCK5B.encode()) == parse_probe(ROCK5B)
    assert parse_probe(bytearray(ROCK5B.encode())) == parse_probe(ROCK5B)


def test_an_empty_probe_that_only_ended_is_a_board_about_which_nothing_is_known():
    assert parse_probe("end=ok\n") == BoardFacts()


def test_a_line_without_an_equals_sign_is_skipped_and_the_lines_after_it_still_count():
    # e.g. a motd or a shell's complaint printed between the probe's lines
    facts = parse_probe("python=3.11.2\n-sh: 1: pgrep: not found\npip=23.0.1\nend=ok\n")
    assert (facts.python, facts.pip) == ("3.11.2", "23.0.1")


def test_values_are_read_without_the_blanks_around_them():
    facts = parse_probe("model=  Orange Pi 5 \t\nserver_pid= 812 \ndf=/tmp| 1978404\nend=ok\n")
    assert facts.model == "Orange Pi 5"
    assert facts.server_pid == 812 and facts.server_running
    assert facts.disk_free_kb == {}               # the blank is inside the value: not a number


def test_a_value_may_itself_hold_an_equals_sign():
    assert parse_probe("os=Distro a=b\nend=ok\n").os == "Distro a=b"


@pytest.mark.parametrize("key", ["os", "model", "python", "python_tag", "pip"])
def test_each_plain_text_fact_is_taken_as_printed(key):
    facts = parse_probe(f"{key}=some value 1.2\nend=ok\n")
    assert getattr(facts, key) == "some value 1.2"
    assert facts == BoardFacts(**{key: "some value 1.2"})


@pytest.mark.parametrize("value", ["glibc", "uclibc", "musl"])
def test_every_known_libc_is_kept(value):
    assert parse_probe(f"libc={value}\nend=ok\n").libc == value


@pytest.mark.parametrize("value", ["", "bionic", "glibc musl"])
def test_a_libc_the_probe_cannot_name_is_unknown(value):
    assert parse_probe(f"libc={value}\nend=ok\n").libc == ""


@pytest.mark.parametrize("value", ["ok", "refused", "uncached"])
def test_every_password_state_the_probe_prints_is_kept(value):
    facts = parse_probe(f"root_mode=sudo-password\nroot_password={value}\nend=ok\n")
    assert facts.root_password == value
    assert facts.sudo == ("ok" if value == "ok" else "no")


@pytest.mark.parametrize("value", ["", "yes", "OK"])
def test_any_other_password_state_is_none_given(value):
    assert parse_probe(f"root_password={value}\nend=ok\n").root_password == ""


@pytest.mark.parametrize("value", ["box 6.1.0", "box 6.1.0 aarch64 extra", ""])
def test_a_uname_line_that_is_not_three_words_leaves_host_kernel_and_arch_unknown(value):
    facts = parse_probe(f"uname={value}\nend=ok\n")
    assert (facts.hostname, facts.kernel, facts.arch) == ("", "", "")


def test_a_compatible_line_lists_each_entry_and_names_the_soc():
    facts = parse_probe("compatible=rockchip,rk3566-evb2-lp4x-v10 rockchip,rk3566 \nend=ok\n")
    assert facts.compatible == ["rockchip,rk3566-evb2-lp4x-v10", "rockchip,rk3566"]
    assert facts.soc == "rk3566"


@pytest.mark.parametrize("value, release", [
    ("", None),                                                   # no driver file, nothing in dmesg
    ("RKNPU driver: v0.9.2", "0.9.2"),
    ("[    7.659074] [drm] Initialized rknpu 0.9.5 20240226 for fdab0000.npu on minor 1", "0.9.5"),
    ("not a version", None),
])
def test_the_npu_driver_is_read_from_any_form_it_is_printed_in(value, release):
    driver = parse_probe(f"npu_driver={value}\nend=ok\n").npu_driver
    assert (driver.release if driver else None) == release


def test_every_npu_node_is_listed_and_a_node_without_group_or_mode_still_counts():
    facts = parse_probe("npu_node=/dev/rknpu|video|660\nnpu_node=/dev/dri/renderD128\n"
                        "npu_node=/dev/dri/renderD129|render\nend=ok\n")
    assert facts.npu_nodes == [NpuNode("/dev/rknpu", "video", "660"), NpuNode("/dev/dri/renderD128", "", ""),
                               NpuNode("/dev/dri/renderD129", "render", "")]


def test_the_light_probe_lists_each_runtime_and_the_first_is_the_one_the_loader_finds():
    facts = parse_probe(f"runtime_version=/usr/lib/librknnrt.so|{RUNTIME_STRING}\n"
                        "runtime_version=/oem/usr/lib/librknnmrt.so|librknnmrt version: 1.6.0 (2de554906@2024-01-17T14:53:41)\n"
                        "runtime_version=/usr/local/lib/librknnrt.so|\nend=ok\n")
    first = InstalledFile(path="/usr/lib/librknnrt.so",
                          version=ComponentVersion("2.3.2", "429f97ae6b@2025-04-09T09:09:27", RUNTIME_STRING))
    assert facts.runtime == first
    assert [(r.path, r.version.release if r.version else None) for r in facts.runtimes] == [
        ("/usr/lib/librknnrt.so", "2.3.2"), ("/oem/usr/lib/librknnmrt.so", "1.6.0"), ("/usr/local/lib/librknnrt.so", None)]
    assert facts.files == {} and facts.server is None


def test_a_runtime_line_without_a_bar_is_a_path_without_a_version():
    facts = parse_probe("runtime_version=/usr/lib/librknnrt.so\nend=ok\n")
    assert facts.runtimes == [InstalledFile(path="/usr/lib/librknnrt.so", version=None)]


@pytest.mark.parametrize("value, pid", [("812", 812), ("0", 0), ("", None), ("812 913", None), ("-1", None)])
def test_the_server_runs_when_the_probe_printed_its_pid(value, pid):
    facts = parse_probe(f"server_pid={value}\nend=ok\n")
    assert facts.server_pid == pid
    assert facts.server_running is (pid is not None)


def test_the_first_server_manager_printed_wins():
    # systemd is printed before start_rknn.sh: a unit that runs the vendor script is still systemd's
    facts = parse_probe("server_manager=systemd\nserver_manager=start_rknn.sh\nend=ok\n")
    assert facts.server_manager == "systemd"
    assert parse_probe("server_manager=start_rknn.sh\nend=ok\n").server_manager == "start_rknn.sh"


@pytest.mark.parametrize("key", ["server_unit", "systemd", "python_h", "gcc", "strings"])
def test_each_yes_fact_is_true_only_for_yes(key):
    assert getattr(parse_probe(f"{key}=yes\nend=ok\n"), key) is True
    assert getattr(parse_probe(f"{key}=no\nend=ok\n"), key) is False
    assert getattr(parse_probe(f"{key}=\nend=ok\n"), key) is False
    assert getattr(parse_probe("end=ok\n"), key) is False
    assert parse_probe(f"{key}=yes\nend=ok\n") == BoardFacts(**{key: True})


@pytest.mark.parametrize("value, release", [("", None), ("2.3.2", "2.3.2"), ("1.6.0b2", "1.6.0b2")])
def test_lite2_is_the_version_of_its_dist_info_or_none(value, release):
    lite2 = parse_probe(f"lite2={value}\nend=ok\n").lite2
    assert (lite2.release if lite2 else None) == release


@pytest.mark.parametrize("value, state", [
    ("/opt/rkdeploy/models|writable", "writable"),
    ("/opt/rkdeploy/models|present", "present"),
    ("/opt/rkdeploy/models|absent", "absent"),
    ("/data/a|b models|present", "present"),          # the state is the last field: a '|' in the path is data
])
def test_the_model_directory_state_is_the_last_field_of_its_line(value, state):
    assert parse_probe(f"model_dir={value}\nend=ok\n").model_dir_state == state


def test_a_model_directory_the_login_user_can_make_is_noticed():
    facts = parse_probe("model_dir=/home/rock/models|absent\nmodel_dir_parent=writable\nmodel_dir_free=1000\nend=ok\n")
    assert (facts.model_dir_state, facts.model_dir_parent_writable, facts.model_dir_free_kb) == ("absent", True, 1000)
    assert parse_probe("model_dir_parent=no\nend=ok\n").model_dir_parent_writable is False


@pytest.mark.parametrize("value, kb", [("29144320", 29144320), ("", None), ("-", None)])
def test_the_free_space_of_the_model_directory_is_a_number_or_unknown(value, kb):
    assert parse_probe(f"model_dir_free={value}\nend=ok\n").model_dir_free_kb == kb


def test_each_model_current_line_maps_the_name_to_its_link_target_which_is_everything_after_the_first_bar():
    facts = parse_probe("model_current=det|versions/abababababab.rknn\nmodel_current=seg|versions/x|y.rknn\n"
                        "model_current=cls\nend=ok\n")
    assert facts.models_current == {"det": "versions/abababababab.rknn", "seg": "versions/x|y.rknn", "cls": ""}


def test_metadata_that_is_not_a_json_object_is_a_warning_quoting_its_first_80_characters():
    long_list = "[" + ", ".join(["1"] * 60) + "]"
    facts = parse_probe(f"model_version={META}\nmodel_version={long_list}\nmodel_version={{broken\nend=ok\n")
    assert facts.model_versions == [{"name": "det", "sha256": "ab" * 32, "deployed_at": "2026-11-23T10:00:00+00:00"}]
    assert facts.warnings == [f"unreadable model metadata: {long_list[:80]!r}", "unreadable model metadata: '{broken'"]


def test_df_lines_map_each_mountpoint_to_its_free_kib_and_skip_unreadable_ones():
    facts = parse_probe("df=/|786256\ndf=/usr/lib|-\ndf=/tmp|\ndf=/var\ndf=/data|0\nend=ok\n")
    assert facts.disk_free_kb == {"/": 786256, "/data": 0}


def test_a_mount_point_with_a_bar_in_its_name_keeps_its_free_space():
    # the free KiB is the last field: the mount point before it is any path df prints
    assert parse_probe("df=/media/rock/a|b|1000\nend=ok\n").disk_free_kb == {"/media/rock/a|b": 1000}


# -- installed files (file=path|size|sha256|magic|version) ---------------------------------------------------

def test_a_managed_file_is_recorded_by_its_checksum_only():
    facts = parse_probe(f"file=/usr/bin/start_rknn.sh|216|{START_SHA}|23212f62|\nend=ok\n")
    assert facts.files == {"/usr/bin/start_rknn.sh": START_SHA}
    assert (facts.runtime, facts.runtimes, facts.server) == (None, [], None)


def test_the_first_runtime_file_is_the_runtime_and_every_one_is_listed():
    facts = parse_probe(f"file=/usr/lib/librknnrt.so|48213|{'5b' * 32}|3c21444f|\n"
                        f"file=/usr/lib64/librknnrt.so|7261512|{RUNTIME_SHA}|7f454c46|{RUNTIME_STRING}\nend=ok\n")
    html = InstalledFile(path="/usr/lib/librknnrt.so", sha256="5b" * 32, size=48213, is_elf=False, version=None)
    real = InstalledFile(path="/usr/lib64/librknnrt.so", sha256=RUNTIME_SHA, size=7261512, is_elf=True,
                         version=ComponentVersion("2.3.2", "429f97ae6b@2025-04-09T09:09:27", RUNTIME_STRING))
    assert facts.runtime == html and facts.runtimes == [html, real]
    assert facts.files == {"/usr/lib/librknnrt.so": "5b" * 32, "/usr/lib64/librknnrt.so": RUNTIME_SHA}


def test_the_first_server_file_is_the_server_and_an_old_servers_bare_version_is_read():
    old = "1.5.0 (17e11b1 build: 2023-05-18 21:43:39)"
    facts = parse_probe(f"file=/usr/bin/rknn_server|67680|{SERVER_SHA}|7f454c46|{old}\n"
                        f"file=/oem/usr/bin/rknn_server|1200312|{'0d' * 32}|7f454c46|{SERVER_STRING}\nend=ok\n")
    assert facts.server == InstalledFile(path="/usr/bin/rknn_server", sha256=SERVER_SHA, size=67680, is_elf=True,
                                         version=ComponentVersion("1.5.0", "17e11b1 build: 2023-05-18 21:43:39", old))
    assert facts.runtimes == [] and facts.runtime is None
    assert facts.files == {"/usr/bin/rknn_server": SERVER_SHA, "/oem/usr/bin/rknn_server": "0d" * 32}


def test_a_server_file_without_a_version_string_has_no_version():
    facts = parse_probe(f"file=/usr/bin/rknn_server|67680|{SERVER_SHA}|7f454c46|\nend=ok\n")
    assert facts.server.version is None and facts.server_version is None


def test_a_file_line_cut_short_keeps_what_it_has():
    facts = parse_probe("file=/usr/lib/librknnrt.so|67432\nend=ok\n")
    assert facts.runtime == InstalledFile(path="/usr/lib/librknnrt.so", sha256="", size=67432, is_elf=False)
    assert facts.files == {"/usr/lib/librknnrt.so": ""}


def test_a_file_size_that_is_not_a_number_is_zero():
    facts = parse_probe(f"file=/usr/lib/librknnrt.so|?|{RUNTIME_SHA}|7f454c46|\nend=ok\n")
    assert facts.runtime.size == 0 and facts.runtime.is_elf


def test_a_bar_inside_the_version_string_stays_part_of_it():
    # the version is the fifth field and the rest of the line: split at the first four bars only
    facts = parse_probe(f"file=/usr/lib/librknnrt.so|1|{RUNTIME_SHA}|7f454c46|librknnrt version: 2.3.2 (a|b)\nend=ok\n")
    assert facts.runtime.version == ComponentVersion("2.3.2", "a|b", "librknnrt version: 2.3.2 (a|b)")


# -- who the login user is (id) ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, user, groups", [
    ("uid=1000(rock) gid=1000(rock) groups=1000(rock),27(sudo),44(video)", "rock", ["rock", "sudo", "video"]),
    ("uid=0(root) gid=0(root) groups=0(root)", "root", ["root"]),
    ("uid=1000(pi) gid=1000(pi)", "pi", []),                         # busybox id without supplementary groups
    ("uid=1000 gid=1000 groups=1000,27", "", []),                     # no names: nobody to name
    ("uid=1001() gid=100(users) groups=100(users)", "", ["users"]),
])
def test_the_login_user_and_groups_are_read_from_id(value, user, groups):
    facts = parse_probe(f"id={value}\nend=ok\n")
    assert (facts.user, facts.user_groups) == (user, groups)


def test_the_groups_are_read_after_groups_not_from_the_gid():
    facts = parse_probe("id=uid=1000(rock) gid=100(users) groups=1000(rock)\nend=ok\n")
    assert facts.user_groups == ["rock"]


# -- root: the probe's root_mode and the older sudo fact ------------------------------------------------------

@pytest.mark.parametrize("lines, mode, sudo", [
    ("sudo=root\n", "root", "root"),                        # older probes print sudo only
    ("sudo=ok\n", "sudo", "ok"),
    ("sudo=no\n", "sudo-password", "no"),
    ("sudo=maybe\n", "", "maybe"),                          # not an older probe's value: nothing derived
    ("root_mode=root\n", "root", "root"),                   # the light probe prints root_mode only
    ("root_mode=sudo\n", "sudo", "ok"),
    ("root_mode=sudo-password\n", "sudo-password", "no"),
    ("root_mode=sudo-password\nroot_password=ok\n", "sudo-password", "ok"),
    ("root_mode=sudo-password\nroot_password=refused\n", "sudo-password", "no"),
    ("root_mode=no-sudo-rights\n", "no-sudo-rights", "no"),
    ("root_mode=no-sudo\nsudo=ok\n", "no-sudo", "ok"),       # a printed sudo fact is kept as printed
    ("root_mode=sudo\nsudo=no\n", "sudo", "no"),
    ("root_mode=sudo\nsudo=root\n", "sudo", "root"),
    ("root_mode=root\nsudo=weird\n", "root", "root"),       # an unknown sudo value is derived anew
    ("", "", ""),
])
def test_root_mode_and_sudo_are_derived_from_each_other(lines, mode, sudo):
    facts = parse_probe(lines + "end=ok\n")
    assert (facts.root_mode, facts.sudo) == (mode, sudo)


# -- the end line --------------------------------------------------------------------------------------------

def test_output_without_the_end_line_says_so_in_the_users_words():
    with pytest.raises(ProbeError) as err:
        parse_probe("uname=box 6.1.0 aarch64\n")
    assert str(err.value) == ("the board's probe output ended early (the command finished without the probe's "
                              "last line: is the login shell a POSIX shell on Linux?)")
    assert not isinstance(err.value, ProbeLinkLost)


def test_output_cut_by_a_lost_link_says_how_much_arrived():
    with pytest.raises(ProbeLinkLost) as err:
        parse_probe("uname=box 6.1.0 aarch64\n", link_lost=True)
    assert str(err.value) == ("the link to the board was lost during the probe (the SSH connection ended before "
                              "the probe finished, after 24 characters of its output)")


def test_a_complete_output_parses_although_the_link_was_lost_right_after_it():
    assert parse_probe("python=3.11.2\nend=ok\n", link_lost=True).python == "3.11.2"


def test_the_end_line_counts_wherever_it_is_and_whatever_it_says():
    assert parse_probe("end=\npython=3.11.2\n").python == "3.11.2"


def test_a_key_that_only_starts_like_end_is_not_the_end():
    with pytest.raises(ProbeError):
        parse_probe("ending=ok\nend_=ok\n")
