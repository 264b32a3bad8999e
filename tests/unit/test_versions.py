"""Every version format a board, a binary or the toolkit prints (fixtures 22 and 24) parses to its release."""
import re

import pytest

from packaging.version import Version
from rkdeploy.versions import (parse_driver, parse_lite2, parse_runtime, parse_sdk_version_block, parse_server, release_of,
                               same_release)
from tests.conftest import FIXTURES

BOARD_STRINGS = (FIXTURES / "toolkit-output/24-board-side-version-strings.txt").read_text()
SDK_BLOCKS = (FIXTURES / "toolkit-output/22-get-sdk-version-output-variants.txt").read_text()


def lines_with(text, needle):
    return [line for line in text.splitlines() if needle in line and not line.startswith("$")]


@pytest.mark.parametrize("line,release,build", [
    ("librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)", "2.3.2", "429f97ae6b@2025-04-09T09:09:27"),
    ("librknnrt version: 1.6.0 (9a7b5d24c@2023-12-13T17:32:13)", "1.6.0", "9a7b5d24c@2023-12-13T17:32:13"),
    ("librknnrt version: 1.5.0 (e6fe0c678@2023-05-25T08:09:53)", "1.5.0", "e6fe0c678@2023-05-25T08:09:53"),
    ("librknnrt version: 1.4.0 (3b4520e4f@2022-09-05T20:48:50)", "1.4.0", "3b4520e4f@2022-09-05T20:48:50"),
    ("librknnmrt version: 2.3.2 (429f97ae6b@2025-04-09T09:11:49)", "2.3.2", "429f97ae6b@2025-04-09T09:11:49"),
])
def test_runtime_strings_from_the_binaries_give_release_and_build(line, release, build):
    assert line in BOARD_STRINGS
    v = parse_runtime(line)
    assert (v.release, v.build) == (release, build)


def test_every_runtime_line_in_the_fixture_parses():
    for line in lines_with(BOARD_STRINGS, "rt version:"):
        assert parse_runtime(line) is not None, line


def test_runtime_self_report_lines_of_both_generations_parse():
    new, old = [line for line in lines_with(BOARD_STRINGS, "RKNN Runtime Information")]
    assert parse_runtime(new).release == "2.3.2"
    assert parse_runtime(old).release == "1.5.2"


@pytest.mark.parametrize("line,release", [
    ("start rknn server, version:2.3.2 (1842325 build@2025-03-30T09:54:34)", "2.3.2"),
    ("start rknn server, version:1.5.0 (17e11b1 build: 2023-05-18 21:43:39)", "1.5.0"),
    ("rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)", "2.3.2"),
    ("1.5.0 (17e11b1 build: 2023-05-18 21:43:39)", "1.5.0"),
])
def test_server_banner_modern_string_and_bare_1_5_0_string_all_parse(line, release):
    assert line in BOARD_STRINGS
    assert parse_server(line).release == release


def test_the_transfer_version_line_is_not_mistaken_for_the_server_version():
    line = lines_with(BOARD_STRINGS, "Starting NPU Transfer Server")[0]
    assert parse_server(line) is None


@pytest.mark.parametrize("line,release", [
    ("RKNPU driver: v0.9.6", "0.9.6"),
    ("[    7.659074] [drm] Initialized rknpu 0.9.5 20240226 for fdab0000.npu on minor 1", "0.9.5"),
    ("[6.356354] [drm] Initialized rknpu 0.9.7 20240424 for 27700000.npu on minor 1", "0.9.7"),
    ("[    5.856717] [drm] Initialized rknpu 0.8.2 20220829 for fdab0000.npu on minor 1", "0.8.2"),
    ("I RKNN: [08:58:26.109] RKNN Driver Information, version: 0.9.8", "0.9.8"),
    ("I RKNN: [14:34:53.242] RKNN Driver Information: version: 0.8.2", "0.8.2"),
])
def test_driver_versions_from_debugfs_dmesg_and_runtime_logs(line, release):
    assert line in BOARD_STRINGS
    assert parse_driver(line).release == release


def test_lite2_self_report_and_metadata_versions_with_build_suffixes():
    assert parse_lite2(lines_with(BOARD_STRINGS, "rknn-toolkit-lite2 version")[0]).release == "2.3.2"
    assert parse_lite2("2.0.0b0+9bab5682").release == "2.0.0b0"
    assert parse_lite2("1.4.0_22dcfef4").release == "1.4.0"
    assert parse_lite2("2.5.0").release == "2.5.0"


def test_get_sdk_version_blocks_give_api_server_and_runtime():
    blocks = re.split(r"\n---- \(", SDK_BLOCKS)
    first = parse_sdk_version_block(blocks[0])
    assert (first["api"].release, first["server"].release, first["runtime"].release) == ("1.5.2", "1.5.2", "1.5.3b13")
    guide = parse_sdk_version_block(blocks[1])
    assert (guide["server"].release, guide["runtime"].release) == ("1.2.5", "1.2.6b0")
    lite = parse_sdk_version_block(blocks[2])
    assert (lite["api"].release, lite["driver"].release) == ("1.5.2", "0.7.2")
    debug_log = parse_sdk_version_block(blocks[3])
    assert (debug_log["api"].release, debug_log["server"].release, debug_log["runtime"].release) == ("1.2.0", "1.3.0", "1.3.0")


def test_build_suffixes_do_not_make_releases_differ_but_prereleases_do():
    assert same_release("2.0.0b0+9bab5682", "2.0.0b0")
    assert same_release("2.3.1-source_code", "2.3.1")
    assert not same_release("2.0.0b0", "2.0.0")
    assert not same_release("1.6.0", "2.3.2")
    assert not same_release(None, "2.3.2")


# How the strings of a real rknn_server read (docs/sdk-releases.md): the label `rknn_server: ` and the bare
# version are separate strings of the binary, so one per line; servers from 1.5.2 on carry the named form too.
SERVER_232_STRINGS = ("%ld SERVER %s(%d): librknnrt path = %s\nrknn_server: \n2.3.2 (1842325 build@2025-03-30T09:54:34)\n"
                      "\nrknnrt: \nstrings %s|grep \"librknnrt version\"\n"
                      "rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)\nstart rknn server, version:%s\n")
SERVER_150_STRINGS = ("rknn_server: \n1.5.0 (17e11b1 build: 2023-05-18 21:43:39)\n\nrknnrt: \n"
                      "Transfer version 2.1.0 (b5861e7@2020-11-23T11:50:51)\nstart rknn server, version:%s\n")


def test_a_servers_strings_give_the_one_exact_version_string_never_two_joined_across_a_newline():
    v = parse_server(SERVER_232_STRINGS)
    assert v.raw == "rknn_server version: 2.3.2 (1842325 build@2025-03-30T09:54:34)"
    assert (v.release, v.build) == ("2.3.2", "1842325 build@2025-03-30T09:54:34")
    old = parse_server(SERVER_150_STRINGS)
    assert old.raw == "1.5.0 (17e11b1 build: 2023-05-18 21:43:39)" and old.release == "1.5.0"
    assert parse_runtime("librknnrt version: \n2.3.2 (429f97ae6b@2025-04-09T09:09:27)") is None


def test_prerelease_servers_and_get_sdk_version_labels_still_parse():
    assert parse_server("rknn_server version: 2.0.0b0 (18eacd0 build@2024-03-22T14:07:19)").release == "2.0.0b0"
    assert parse_server("2.0.0b0 (18eacd0 build@2024-03-22T14:07:19)").release == "2.0.0b0"
    assert parse_server("D RKNNAPI: rknn_server: 1.5.2 (8babfea build@2023-08-25T10:30:31)").release == "1.5.2"


@pytest.mark.parametrize("text", [
    "1" * 20000, "1." + "1" * 20000, "librknnrt version: " + "1" * 20000, "librknnrt version: 1." + "1" * 20000,
    "1.1." + "1" * 20000 + "!", "1.2.3" + "4" * 20000 + " (ab build: x)", "rknn_server version: " + "1" * 20000 + " (",
    "1" * 20000 + " (abc build: x", "RKNPU driver: " + "1" * 20000, "API: " + "(" * 20000, "rknnrt: " + "9." * 10000,
])
def test_a_20k_digit_line_parses_fast_and_names_no_release(text):
    import time

    start = time.perf_counter()
    for parse in (release_of, parse_runtime, parse_server, parse_driver, parse_lite2, parse_sdk_version_block):
        parse(text)
    assert time.perf_counter() - start < 0.5


def test_lite2s_self_report_is_read_from_its_label_not_from_the_first_number_on_the_line():
    line = "/usr/lib/python3.11/site-packages/rknnlite/api: W rknn-toolkit-lite2 version: 2.3.2"
    assert release_of(line) == Version("3.11")
    lite2 = parse_lite2(line)
    assert lite2.release == "2.3.2" and lite2.build == "" and lite2.raw == line


def test_a_version_without_a_build_has_an_empty_build_in_every_parser():
    assert parse_runtime("librknnrt version: 2.3.2").build == ""
    assert parse_server("rknn_server version: 2.3.2").build == ""
    assert parse_driver("RKNPU driver: v0.9.8").build == ""
    assert parse_lite2("2.3.2").build == ""


def test_the_api_line_of_get_sdk_version_keeps_its_build_and_reads_api_without_a_space():
    block = parse_sdk_version_block("I RKNNAPI: API:2.3.2 (429f97ae6b@2025-04-09T09:09:27)\nAPI: 1.5.2\n")
    assert block["api"] == parse_sdk_version_block("API: 1.5.2")["api"]          # the last API line wins
    first = parse_sdk_version_block("I RKNNAPI: API:2.3.2 (429f97ae6b@2025-04-09T09:09:27)")["api"]
    assert (first.release, first.build) == ("2.3.2", "429f97ae6b@2025-04-09T09:09:27")
    plain = parse_sdk_version_block("API: 1.5.2")["api"]
    assert (plain.release, plain.build) == ("1.5.2", "")
