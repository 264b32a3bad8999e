"""The scripts a deploy runs on a board, run here by the local POSIX shell against a temporary model
directory: what arrives intact is activated, anything else leaves the active model as it was."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rkdeploy.deploy import CORRUPT_EXIT, activate_script, receive_script

MODEL = b"RKNN" + bytes(range(256)) * 64
SHA = hashlib.sha256(MODEL).hexdigest()


def run(script: str, stdin: bytes = b"", path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path or os.environ["PATH"])
    return subprocess.run(["/bin/sh", "-c", script], input=stdin, capture_output=True, env=env, timeout=30)


def receive(models: Path, stdin: bytes, prune=(), prepare=False, path=None):
    meta = json.dumps({"name": "det", "sha256": SHA})
    return run(receive_script(str(models), "det", SHA, meta, list(prune), prepare=prepare), stdin, path)


def model_files(models: Path) -> list[str]:
    return sorted(p.name for p in (models / "det/versions").iterdir())


def test_a_model_that_arrives_intact_becomes_current_with_its_metadata(tmp_path):
    done = receive(tmp_path, MODEL, prepare=True)
    assert done.returncode == 0, done.stderr
    current = tmp_path / "det/current.rknn"
    assert os.readlink(current) == f"versions/{SHA[:12]}.rknn" and current.read_bytes() == MODEL
    assert json.loads((tmp_path / f"det/versions/{SHA[:12]}.json").read_text())["sha256"] == SHA
    assert model_files(tmp_path) == [f"{SHA[:12]}.json", f"{SHA[:12]}.rknn"]


@pytest.mark.parametrize("damage", [lambda b: b[:-100], lambda b: b[:10] + b"X" + b[11:]], ids=["cut short", "altered"])
def test_a_damaged_upload_is_refused_and_the_active_model_stays(tmp_path, damage):
    (tmp_path / "det/versions").mkdir(parents=True)
    (tmp_path / "det/versions/aaaaaaaaaaaa.rknn").write_bytes(b"old")
    os.symlink("versions/aaaaaaaaaaaa.rknn", tmp_path / "det/current.rknn")
    done = receive(tmp_path, damage(MODEL))
    assert done.returncode == CORRUPT_EXIT and b"did not arrive intact" in done.stderr
    assert (tmp_path / "det/current.rknn").read_bytes() == b"old"
    assert model_files(tmp_path) == ["aaaaaaaaaaaa.rknn"]            # no temporary file left behind


def test_without_openssl_the_board_hashes_with_sha256sum(tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("cat", "sha256sum", "mv", "ln", "rm", "mkdir"):
        os.symlink(shutil.which(tool), tools / tool)
    models = tmp_path / "models"
    assert receive(models, MODEL[:-1], prepare=True, path=str(tools)).returncode == CORRUPT_EXIT
    done = receive(models, MODEL, path=str(tools))
    assert done.returncode == 0, done.stderr
    assert (models / "det/current.rknn").read_bytes() == MODEL


def test_pruning_never_removes_the_active_version(tmp_path):
    versions = tmp_path / "det/versions"
    versions.mkdir(parents=True)
    for sha in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
        (versions / f"{sha}.rknn").write_bytes(sha.encode())
    (versions / ".bbbbbbbbbbbb.rknn.part-1234").write_bytes(b"left by an interrupted upload")
    done = run(activate_script(str(tmp_path), "det", "bbbbbbbbbbbb", ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]))
    assert done.returncode == 0, done.stderr
    assert model_files(tmp_path) == ["bbbbbbbbbbbb.rknn"]
    assert os.readlink(tmp_path / "det/current.rknn") == "versions/bbbbbbbbbbbb.rknn"


def test_the_probe_takes_the_lock_only_when_the_model_is_not_already_active(tmp_path):
    from rkdeploy.deploy import probe_and_lock_script
    from rkdeploy.probe import parse_probe

    assert receive(tmp_path, MODEL, prepare=True).returncode == 0
    same = run(probe_and_lock_script(str(tmp_path), "det", SHA[:12], wait=5))        # stdin at EOF: no beats
    other = run(probe_and_lock_script(str(tmp_path), "det", "0" * 12, wait=5))
    assert same.returncode == 0 and not same.stdout.endswith(b"locked\n")
    assert other.returncode == 0 and other.stdout.endswith(b"end=ok\nlocked\n")
    assert parse_probe(same.stdout.decode()).models_current == {"det": f"versions/{SHA[:12]}.rknn"}
