"""rkdeploy's toolkit discovery run against the REAL rknn-toolkit2 (RKDEPLOY_TOOLKIT_PYTHON, made by
scripts/test.sh from rkdeploy/toolkit_constraints/2.3.2.txt), never against the lab's stand-in."""
import os
import subprocess

from rkdeploy.toolkit import constraints_file, env_key, read_toolkit, toolkit_adb


def test_the_version_is_read_from_the_real_toolkits_metadata(real_toolkit):
    assert read_toolkit(real_toolkit).version == "2.3.2"


def test_the_bundled_adb_is_found_in_the_real_namespace_package(real_toolkit):
    spec = subprocess.run([real_toolkit, "-c", "import importlib.util as u; s = u.find_spec('rknn'); "
                           "print(s.origin); print(list(s.submodule_search_locations)[0])"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert spec[0] == "None"          # a namespace package: what the first discovery code got wrong
    adb = toolkit_adb(real_toolkit)
    assert adb == os.path.join(spec[1], "3rdparty/platform-tools/adb/linux-x86_64/adb")
    version = subprocess.run([adb, "version"], capture_output=True, text=True, timeout=30).stdout
    assert "Android Debug Bridge version 1.0.40" in version


def test_the_real_toolkit_imports_with_the_pinned_set(real_toolkit):
    proc = subprocess.run([real_toolkit, "-c", "from rknn.api import RKNN; RKNN(verbose=False); "
                           "import torch, numpy; print(torch.__version__, numpy.__version__)"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["2.13.0+cpu", "1.26.4"]


def test_the_cached_environment_is_named_by_the_pinned_sets_hash():
    assert "torch==2.13.0" in constraints_file("2.3.2").read_text()
    assert env_key("2.3.2").startswith("toolkit-2.3.2-") and len(env_key("2.3.2")) == len("toolkit-2.3.2-") + 12
