"""The probe parser, from captured probe outputs (lab boards and field-style boards)."""
import subprocess

import pytest

from rkdeploy.probe import ProbeError, ProbeLinkLost, parse_probe, probe_script, version_script
from rkdeploy.versions import parse_runtime, parse_server
from tests.conftest import FIXTURES

PROBES = FIXTURES / "probe"


def test_the_field_board_reads_as_rk3588_with_1_5_0_runtime_and_server_running_under_start_rknn():
    facts = parse_probe((PROBES / "rk3588-field-1.5.0.txt").read_text())
    assert (facts.arch, facts.soc, facts.model) == ("aarch64", "rk3588", "Firefly ITX-3588J")
    assert facts.npu_driver.release == "0.9.2"
    assert facts.runtime.path == "/usr/lib/librknnrt.so" and facts.runtime.is_elf
    assert facts.runtime_version.release == "1.5.0"
    assert facts.server_version.release == "1.5.0"
    assert facts.server_version.build == "17e11b1 build: 2023-05-18 21:43:39"
    assert facts.server_running and facts.server_pid == 35 and facts.server_manager == "start_rknn.sh"
    assert facts.lite2 is None and facts.python_tag == "cp311" and facts.pip == "23.0.1"
    assert not facts.python_h and not facts.gcc
    assert facts.npu_nodes[0].path == "/dev/rknpu" and facts.npu_nodes[0].group == "video"
    assert facts.disk_free_kb["/"] == 786256
    assert facts.files["/usr/bin/start_rknn.sh"].startswith("1cb242ac")


def test_a_board_whose_server_and_runtime_disagree_shows_both_versions():
    facts = parse_probe((PROBES / "rk3588-mismatch.txt").read_text())
    assert facts.server_version.release == "1.6.0"
    assert facts.runtime_version.release == "2.3.2"


def test_an_html_file_named_librknnrt_is_noticed_and_the_next_library_is_still_listed():
    facts = parse_probe((PROBES / "vendor-root-html-runtime.txt").read_text())
    assert facts.runtime.path == "/usr/lib/librknnrt.so" and not facts.runtime.is_elf
    assert facts.runtime.version is None
    assert [r.path for r in facts.runtimes] == ["/usr/lib/librknnrt.so", "/usr/lib64/librknnrt.so"]
    assert facts.runtimes[1].version.release == "1.6.0"
    assert facts.npu_driver.release == "0.9.5"          # from the dmesg line
    assert facts.soc == "rk3588" and facts.sudo == "root"
    assert facts.server_unit and not facts.server_running
    assert facts.lite2.release == "1.6.0" and facts.python_h and facts.gcc


def test_output_cut_short_is_an_error_not_a_board_without_software():
    with pytest.raises(ProbeError, match="ended early") as err:
        parse_probe((PROBES / "no-sudo-truncated.txt").read_text())
    assert not err.value.link_lost and not isinstance(err.value, ConnectionError)


def test_output_cut_short_by_a_lost_link_says_the_link_was_lost_not_that_the_shell_is_wrong():
    from rkdeploy.fleet import UNREACHABLE, classify

    with pytest.raises(ProbeLinkLost) as err:
        parse_probe((PROBES / "no-sudo-truncated.txt").read_text(), link_lost=True)
    message = str(err.value)
    assert "link to the board was lost during the probe" in message and "POSIX" not in message
    assert err.value.link_lost and isinstance(err.value, ProbeError) and isinstance(err.value, ConnectionError)
    status, text = classify(err.value)
    assert status == UNREACHABLE and "link to the board was lost" in text


def test_the_probe_script_is_valid_posix_shell():
    for with_password in (False, True):
        script = probe_script("/opt/venv/bin/python3", sudo_password_on_stdin=with_password)
        subprocess.run(["sh", "-n"], input=script.encode(), check=True)


def test_the_probe_quotes_the_python_path_and_never_contains_a_password_placeholder_in_argv():
    script = probe_script("/opt/my venv/bin/python3", sudo_password_on_stdin=True)
    assert "'/opt/my venv/bin/python3'" in script
    assert "sudo -S -p ''" in script and "IFS= read -r RKD_PW" in script


def test_running_the_probe_on_this_linux_machine_yields_a_complete_record():
    # Not a board, but a real Linux: the script must run to the end and parse.
    out = subprocess.run(["sh", "-c", probe_script()], capture_output=True, text=True, timeout=60).stdout
    facts = parse_probe(out)
    assert facts.arch and facts.kernel and facts.python_tag.startswith("cp")


def test_the_light_probe_reads_a_model_directory_on_this_machine(tmp_path):
    import json

    versions = tmp_path / "det/versions"
    versions.mkdir(parents=True)
    meta = {"name": "det", "sha256": "ab" * 32, "deployed_at": "2026-11-23T10:00:00+00:00"}
    (versions / "abababababab.json").write_text(json.dumps(meta) + "\n")
    (versions / "abababababab.rknn").write_bytes(b"RKNN")
    (tmp_path / "det/current.rknn").symlink_to("versions/abababababab.rknn")
    script = probe_script(model_dir=str(tmp_path), system=False)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    facts = parse_probe(subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60).stdout)
    assert facts.models_current == {"det": "versions/abababababab.rknn"}
    assert facts.model_versions == [meta] and facts.model_dir_state == "writable" and facts.model_dir_free_kb > 0
    missing = parse_probe(subprocess.run(["sh", "-c", probe_script(model_dir=str(tmp_path / "a/b/c"), system=False)],
                                         capture_output=True, text=True, timeout=60).stdout)
    assert missing.model_dir_state == "absent" and missing.model_dir_free_kb > 0


def test_a_virtualenv_python_is_judged_by_its_own_packages_only(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin/python"
    mm = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                        capture_output=True, text=True, check=True).stdout.strip()
    site = venv / f"lib/python{mm}/site-packages"

    def lite2():
        out = subprocess.run(["sh", "-c", probe_script(python=str(python))], capture_output=True, text=True, timeout=60)
        facts = parse_probe(out.stdout)
        return (facts.lite2.release if facts.lite2 else None), facts.pip

    assert lite2() == (None, "")                    # this machine's system packages are not the venv's
    (site / "rknn_toolkit_lite2-2.3.2.dist-info").mkdir()
    (site / "pip-24.0.dist-info").mkdir()
    assert lite2() == ("2.3.2", "24.0")


MINIMAL_PROBE = "uname=box 6.1.0 aarch64\nstrings=yes\nend=ok\n"


def test_whether_the_board_has_binutils_strings_is_a_fact():
    # Rockchip's rknn_server runs `strings LIB | grep "librknnrt version"`: without strings it cannot read the runtime.
    assert parse_probe(MINIMAL_PROBE).strings is True
    assert parse_probe(MINIMAL_PROBE.replace("strings=yes\n", "")).strings is False
    assert "command -v strings" in probe_script()
    import shutil

    out = subprocess.run(["sh", "-c", probe_script()], capture_output=True, text=True, timeout=60).stdout
    assert parse_probe(out).strings == (shutil.which("strings") is not None)


def test_the_probe_reads_the_named_server_string_although_the_bare_one_comes_first_in_the_file(tmp_path):
    # as in Rockchip's 1.5.2+ servers: `rknn_server: `, the bare version, then (later) the named form
    server = tmp_path / "rknn_server"
    server.write_bytes(b"\x7fELF\0x = %s\n\0rknn_server: \0\0\0002.3.2 (1842325 build@2025-03-30T09:54:34)\0\0\n"
                       b"rknnrt: \0Transfer version 2.2.2 (@2024-06-18T03:50:51)\0"
                       b"rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)\0\0")
    old = tmp_path / "old_server"
    old.write_bytes(b"\x7fELF\0rknn_server: \0\0\0001.5.0 (17e11b1 build: 2023-05-18 21:43:39)\0\0")
    lib = tmp_path / "librknnrt.so"
    lib.write_bytes(b"\x7fELF\0\0librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\0\0")
    out = {p.name: subprocess.run(["sh", "-c", version_script(str(p))], capture_output=True, text=True).stdout
           for p in (server, old, lib)}
    assert out["rknn_server"] == "rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)\n"
    assert out["old_server"] == "1.5.0 (17e11b1 build: 2023-05-18 21:43:39)\n"
    assert parse_server(out["old_server"]).release == "1.5.0"
    assert parse_runtime(out["librknnrt.so"]).raw == "librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)"


# -- board output is not trusted: odd bytes and absurd lengths parse, never raise ----------------------------

LATIN1_MODELS = (b"uname=box 6.1.0 aarch64\n"
                 b"model_dir=/opt/models|writable\n"
                 b"model_current=d\xe9tecteur|versions/abababababab.rknn\n"
                 b"model_current=det|versions/cdcdcdcdcdcd.rknn\n"
                 b'model_version={"name": "d\xe9tecteur", "sha256": "' + b"ab" * 32 + b'"}\n'
                 b"end=ok\n")


def test_a_latin1_model_name_in_the_model_directory_parses_with_a_replacement_character():
    facts = parse_probe(LATIN1_MODELS)                       # bytes, as read from the channel
    assert facts.models_current == {"d\ufffdtecteur": "versions/abababababab.rknn",
                                    "det": "versions/cdcdcdcdcdcd.rknn"}
    assert facts.model_versions == [{"name": "d\ufffdtecteur", "sha256": "ab" * 32}]


def test_invalid_utf8_decoded_with_replace_keeps_every_other_fact():
    text = (LATIN1_MODELS + b"server_pid=\xff\xfe\n").decode(errors="replace")   # what BoardSession.run returns
    facts = parse_probe(text)
    assert facts.arch == "aarch64" and facts.models_current["det"] == "versions/cdcdcdcdcdcd.rknn"
    assert facts.server_pid is None and not facts.server_running


def test_model_metadata_that_is_not_a_json_object_is_a_warning_not_a_crash():
    facts = parse_probe("model_version=[1, 2]\nmodel_version=" + "[" * 100000 + "\nend=ok\n")
    assert facts.model_versions == [] and len(facts.warnings) == 2


DIGITS = "1" * 20000


@pytest.mark.parametrize("line,check", [
    (f"id=uid={DIGITS} gid=1 groups={DIGITS}", lambda f: (f.user, f.user_groups) == ("", [])),
    (f"id=uid=1(rock) groups={DIGITS}(x),2(video)", lambda f: (f.user, f.user_groups) == ("rock", ["x", "video"])),
    (f"server_pid={DIGITS}", lambda f: f.server_pid is None and not f.server_running),
    (f"model_dir_free={DIGITS}", lambda f: f.model_dir_free_kb is None),
    (f"df=/|{DIGITS}", lambda f: f.disk_free_kb == {}),
    (f"file=/usr/lib/librknnrt.so|{DIGITS}|{DIGITS}|{DIGITS}|{DIGITS}",
     lambda f: f.runtime.size == 0 and f.runtime.version is None and not f.runtime.is_elf),
    (f"npu_driver={DIGITS}", lambda f: f.npu_driver is None),
    (f"npu_driver=RKNPU driver: v{DIGITS}.1", lambda f: f.npu_driver is None),
    (f"runtime_version=/usr/lib/librknnrt.so|librknnrt version: {DIGITS}", lambda f: f.runtime.version is None),
    (f"lite2={DIGITS}", lambda f: f.lite2 is None),
    (f"uname={DIGITS}", lambda f: f.arch == ""),
    (f"compatible=rockchip,{DIGITS}", lambda f: f.soc == ""),
    (f"model_current={DIGITS}|{DIGITS}", lambda f: f.models_current == {DIGITS: DIGITS}),
    (f"model_version={DIGITS}", lambda f: f.model_versions == [] and f.warnings),
    (f"server_pid=\u00b2", lambda f: f.server_pid is None),          # str.isdigit() is True, int() refuses it
])
def test_a_20000_digit_value_in_any_field_parses_to_a_plain_result(line, check):
    # measured by hand (docs/hardening.md): each well under 50 ms; the groups= line took 1.2 s before
    assert check(parse_probe(f"{line}\nend=ok\n"))


def test_a_model_directory_or_link_target_with_a_newline_cannot_forge_probe_lines(tmp_path):
    """Run the probe's model section with /bin/sh on a real directory holding hostile names."""
    import subprocess

    from rkdeploy.probe import probe_script

    md = tmp_path / "models"
    (md / "good/versions").mkdir(parents=True)
    (md / "good/current.rknn").symlink_to("versions/aaaaaaaaaaaa.rknn")
    (md / "zz\nend=ok/versions").mkdir(parents=True)
    (md / "zz\nend=ok/current.rknn").symlink_to("versions/x")
    (md / "zz/versions").mkdir(parents=True)
    (md / "zz/current.rknn").symlink_to("versions/x\nmodel_current=good|versions/ffffffffffff.rknn")
    out = subprocess.run(["/bin/sh", "-c", probe_script(model_dir=str(md), system=False)],
                         capture_output=True, text=True, timeout=60).stdout
    facts = parse_probe(out)
    assert facts.models_current == {"good": "versions/aaaaaaaaaaaa.rknn"}


def test_the_libc_is_a_fact_and_an_unknown_value_is_dropped():
    from rkdeploy.probe import parse_probe as parse
    assert parse("libc=uclibc\nend=ok\n").libc == "uclibc"
    assert parse("libc=glibc\nend=ok\n").libc == "glibc"
    assert parse("libc=$(reboot)\nend=ok\n").libc == ""


def test_the_probe_finds_processes_without_pgrep_and_reads_the_libc_by_its_loader(tmp_path):
    """On a PATH without pgrep (busybox boards), rkd_pid falls back to pidof; the loader decides the libc."""
    import subprocess
    from rkdeploy.probe import LIBC_PART, PID_FUNCTION
    out = subprocess.run(["/bin/sh", "-c", "p() { printf '%s=%s\\n' \"$1\" \"$2\"; }\n" + PID_FUNCTION + LIBC_PART
                          + "p self \"$(rkd_pid sh)\"\n"], capture_output=True, text=True, timeout=30)
    assert "libc=glibc" in out.stdout and out.stdout.split("self=")[1].strip().isdigit(), out
