"""The scripts a deploy runs on a board, run here by the local POSIX shell against a temporary model
directory (and a temporary HOME, where the board lock is really taken): what arrives intact is activated,
anything else leaves the active model as it was; values from users and boards are checked, and hostile
ones that are allowed (a model directory with quotes and spaces, metadata) stay data."""
import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rkdeploy.deploy import CORRUPT_EXIT, activate_script, receive_script
from rkdeploy.lock import LOCK_LOST_EXIT
from tests.unit.test_lock import Holder

MODEL = b"RKNN" + bytes(range(256)) * 64
SHA = hashlib.sha256(MODEL).hexdigest()
HOME: Path | None = None          # the board login user's home of the running test (where its lock lives)


@pytest.fixture(autouse=True)
def lock(tmp_path_factory):
    """The board lock, held by a real holder for the test's scripts (they check it before renaming)."""
    global HOME
    HOME = tmp_path_factory.mktemp("home")
    holder = Holder(HOME)
    assert holder.first_line() == "locked"
    yield holder
    holder.stop()


def run(script: str, stdin: bytes = b"", path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path or os.environ["PATH"], HOME=str(HOME))
    return subprocess.run(["/bin/sh", "-c", script], input=stdin, capture_output=True, env=env, timeout=30)


def receive(models: Path, stdin: bytes, prune=(), prepare=False, path=None, token=None, name="det", meta=None):
    meta = meta or json.dumps({"name": name, "sha256": SHA})
    return run(receive_script(str(models), name, SHA, meta, list(prune), prepare=prepare,
                              lock_token=token or lock_token()), stdin, path)


def lock_token() -> str:
    return os.readlink(HOME / ".cache/rkdeploy/lock/holder")


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
    for tool in ("cat", "sha256sum", "mv", "ln", "rm", "mkdir", "flock", "readlink"):
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
    done = run(activate_script(str(tmp_path), "det", "bbbbbbbbbbbb", ["aaaaaaaaaaaa", "bbbbbbbbbbbb"],
                               lock_token=lock_token()))
    assert done.returncode == 0, done.stderr
    assert model_files(tmp_path) == ["bbbbbbbbbbbb.rknn"]
    assert os.readlink(tmp_path / "det/current.rknn") == "versions/bbbbbbbbbbbb.rknn"


def test_the_probe_takes_the_lock_only_when_the_model_is_not_already_active(tmp_path, lock):
    from rkdeploy.deploy import probe_and_lock_script
    from rkdeploy.probe import parse_probe

    assert receive(tmp_path, MODEL, prepare=True).returncode == 0
    lock.let_go()
    assert lock.ended(10) == 0
    same = run(probe_and_lock_script(str(tmp_path), "det", SHA[:12], wait=5, lock_token="1" * 16))  # stdin at EOF
    other = run(probe_and_lock_script(str(tmp_path), "det", "0" * 12, wait=5, lock_token="1" * 16))
    assert same.returncode == 0 and not same.stdout.endswith(b"locked\n")
    assert other.returncode == 0 and other.stdout.endswith(b"end=ok\nlocked\n")
    assert parse_probe(same.stdout.decode()).models_current == {"det": f"versions/{SHA[:12]}.rknn"}


# -- values from users and boards (hardening: each of these reached a remote shell before) -------------------
import socket
import sys
from types import SimpleNamespace

from rkdeploy import remote
from rkdeploy.deploy import DeployError, deploy_job, model_name, plan_deploy
from rkdeploy.facts import BoardFacts

RKDEPLOY = str(Path(sys.executable).parent / "rkdeploy")
HOSTILE = ["$(touch pwned)", "`touch pwned`", "'; touch pwned; echo '", 'a"b\\c', "-n", "two\nlines", " lead", "*"]


@pytest.mark.parametrize("args", [["models.remove", ""], ["models.remove", "../other-app"], ["models.remove", "."],
                                  ["models.rollback", "../x"], ["models.rollback", "det\n"],
                                  ["models.remove", "det", "--model-dir", "/opt/../etc"],
                                  ["models.remove", "det", "--model-dir", "relative/dir"]],
                         ids=["empty", "parent", "dot", "rollback-parent", "trailing-newline", "dotdot-dir", "relative-dir"])
def test_a_bad_model_name_or_dir_is_refused_before_any_connection(tmp_path, args):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        inventory = tmp_path / "inv.yaml"
        inventory.write_text(f"boards:\n  b:\n    host: 127.0.0.1\n    port: {listener.getsockname()[1]}\n")
        proc = subprocess.run([RKDEPLOY, *args, "--all", "--inventory", str(inventory)], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        with pytest.raises(socket.timeout):
            listener.accept()
    assert proc.returncode == 1, proc.stderr
    assert ("model name" in proc.stderr and "letters, digits" in proc.stderr) or "--model-dir" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", ".hidden", "-rf", "det\n", "det\r", "a b", "x" * 65,
                                  "$(reboot)", "d\x00"])
def test_model_names_are_checked_whole(name):
    with pytest.raises(remote.RemoteValueError):
        remote.model_name(name)
    with pytest.raises(DeployError, match="pass --name"):
        model_name(SimpleNamespace(path="/tmp/x.rknn"), name)


def test_valid_names_and_the_file_name_default_pass():
    assert remote.model_name("yolo_v8-s.2") == "yolo_v8-s.2" and remote.model_name("x" * 64)
    assert model_name(SimpleNamespace(path="/models/det.rknn"), None) == "det"
    with pytest.raises(DeployError):
        model_name(SimpleNamespace(path="/models/.rknn"), None)


def test_shas_and_model_dirs_are_checked():
    assert remote.sha256(SHA) == SHA and remote.sha12(SHA[:12]) == SHA[:12]
    for bad in ["$(reboot)", SHA.upper(), SHA[:63], SHA + "\n", SHA[:12], None, 12]:
        with pytest.raises(remote.RemoteValueError):
            remote.sha256(bad)
    for bad in ["$(reboot)", "ABCDEF012345", SHA[:11], SHA[:12] + "\n"]:
        with pytest.raises(remote.RemoteValueError):
            remote.sha12(bad)
    assert remote.model_dir("/opt/it's a dir/") == "/opt/it's a dir"
    for bad in ["", "opt/models", "/opt/../etc", "/opt/..", "/opt/x\n", "/opt/\x00", None]:
        with pytest.raises(remote.RemoteValueError):
            remote.model_dir(bad)


def test_script_parameters_are_checked():
    with pytest.raises(ValueError):
        remote.script("", **{"a-b": "x"})
    with pytest.raises(ValueError):
        remote.script("", **{"1a": "x"})
    for bad in [None, 1.5, ["x"], True, b"x"]:
        with pytest.raises(TypeError):
            remote.script("", v=bad)
    with pytest.raises(ValueError):
        remote.script("", v="a\x00b")
    assert remote.script('echo "$n"\n', n=3, s="x y") == "n=3\ns='x y'\necho \"$n\"\n"


def test_hostile_values_in_a_rendered_script_stay_data(tmp_path):
    for i, value in enumerate(HOSTILE):
        done = subprocess.run(["/bin/sh", "-c", remote.script('printf "%s" "$v" > "$out"', v=value,
                                                              out=str(tmp_path / f"out{i}"))],
                              cwd=tmp_path, capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / f"out{i}").read_text() == value
    assert not (tmp_path / "pwned").exists()


def test_a_model_dir_with_quotes_spaces_and_substitutions_works_and_stays_data(tmp_path):
    models = tmp_path / "it's a $(touch pwned) `touch pwned` dir"
    meta = json.dumps({"name": "det", "sha256": SHA, "source": "'$(touch pwned)'.rknn"})
    done = receive(models, MODEL, prepare=True, meta=meta)
    assert done.returncode == 0, done.stderr
    assert os.readlink(models / "det/current.rknn") == f"versions/{SHA[:12]}.rknn"
    assert (models / f"det/versions/{SHA[:12]}.json").read_text() == meta + "\n"
    assert not list(tmp_path.rglob("pwned")) and not (Path.cwd() / "pwned").exists()
    from rkdeploy.deploy import probe_and_lock_script
    from rkdeploy.probe import parse_probe
    probe = run(probe_and_lock_script(str(models), "det", SHA[:12], wait=5, lock_token="1" * 16))
    assert parse_probe(probe.stdout.decode()).models_current == {"det": f"versions/{SHA[:12]}.rknn"}


def test_a_script_renames_nothing_once_the_lock_is_lost(tmp_path, lock):
    (tmp_path / "det/versions").mkdir(parents=True)
    (tmp_path / "det/versions/aaaaaaaaaaaa.rknn").write_bytes(b"old")
    os.symlink("versions/aaaaaaaaaaaa.rknn", tmp_path / "det/current.rknn")
    token = lock_token()
    stolen = receive(tmp_path, MODEL, token="f" * 16)                # another run's token: not this run's lock
    assert stolen.returncode == LOCK_LOST_EXIT and b"board lock was lost" in stolen.stderr
    lock.let_go()                                                    # this run's holder lets go (no beats)
    assert lock.ended(10) == 0
    lost = receive(tmp_path, MODEL, token=token)
    assert lost.returncode == LOCK_LOST_EXIT and b"nothing was changed" in lost.stderr
    (tmp_path / "det/versions/bbbbbbbbbbbb.rknn").write_bytes(b"kept")
    switch = run(activate_script(str(tmp_path), "det", "bbbbbbbbbbbb", ["aaaaaaaaaaaa"], lock_token=token))
    assert switch.returncode == LOCK_LOST_EXIT
    assert (tmp_path / "det/current.rknn").read_bytes() == b"old"
    assert model_files(tmp_path) == ["aaaaaaaaaaaa.rknn", "bbbbbbbbbbbb.rknn"]     # no temporary file left


def test_the_remove_script_removes_only_the_named_model_and_only_under_the_lock(tmp_path, lock):
    from rkdeploy.lock import held_params
    from rkdeploy.models import _REMOVE
    for d in ("det/versions", "other/versions"):
        (tmp_path / d).mkdir(parents=True)
    removed = run(remote.script(_REMOVE, model_dir=str(tmp_path), name="det", **held_params(lock_token())))
    assert removed.stdout == b"removed\n" and sorted(p.name for p in tmp_path.iterdir()) == ["other"]
    lock.let_go()
    assert lock.ended(10) == 0
    late = run(remote.script(_REMOVE, model_dir=str(tmp_path), name="other", **held_params("e" * 16)))
    assert late.returncode == LOCK_LOST_EXIT and (tmp_path / "other").exists()


def test_a_pruned_version_that_is_not_a_sha12_is_refused():
    with pytest.raises(remote.RemoteValueError):
        activate_script("/opt/m", "det", "bbbbbbbbbbbb", ["$(reboot)"], lock_token="1" * 16)
    with pytest.raises(remote.RemoteValueError):
        activate_script("/opt/m", "det", "$(reboot)", [], lock_token="1" * 16)


MODEL_OBJ = SimpleNamespace(sha256=SHA, size=len(MODEL), path="/m/det.rknn", target_platforms=["rk3588"],
                            toolkit_release=None, toolkit_version="2.3.2", format_version=6)


def facts_with(versions=(), current=None) -> BoardFacts:
    facts = BoardFacts()
    facts.model_versions = list(versions)
    if current is not None:
        facts.models_current = {"det": current}
    return facts


@pytest.mark.parametrize("versions,current,file", [
    ([{"name": "det", "sha256": "$(reboot)"}], None, "/opt/m/det/versions/*.json"),
    ([{"name": "det", "sha256": SHA[:12]}], None, "/opt/m/det/versions/*.json"),
    ([{"name": "det"}], None, "/opt/m/det/versions/*.json"),
    ([], "../../../etc/passwd", "/opt/m/det/current.rknn"),
    ([], "versions/$(reboot).rknn", "/opt/m/det/current.rknn"),
], ids=["substitution", "short", "missing", "link-escape", "link-substitution"])
def test_bad_values_read_from_a_board_are_refused_naming_its_file(versions, current, file):
    with pytest.raises(DeployError) as e:
        plan_deploy(MODEL_OBJ, "det", facts_with(versions, current), "b", 3, False, "/opt/m")
    assert file in str(e.value)


class FakeChannel:
    def __init__(self, log, output):
        self.log, self.output, self.closed = log, output, False

    def settimeout(self, t):
        pass

    def exec_command(self, command):
        self.log.append(command)

    def makefile(self, mode):
        return io.BytesIO(self.output.encode()) if "b" in mode else io.StringIO(self.output)

    def shutdown_write(self):
        pass

    def close(self):
        self.closed = True


def test_a_board_whose_metadata_sha_is_hostile_fails_with_no_command_built_from_it():
    """The whole deploy job against a board whose probe reports `$(reboot)` as a version's sha: that board
    fails with DeployError (the fleet reports it as `failed`), after the probe and nothing else."""
    log = []
    meta = json.dumps({"name": "det", "sha256": "$(reboot)", "deployed_at": "2024"})
    output = f"compatible=rockchip,rk3588\nmodel_version={meta}\nend=ok\n"
    session = SimpleNamespace(board=SimpleNamespace(name="b", vars={}), commands=0,
                              settings=SimpleNamespace(command_timeout=5, connect_timeout=1),
                              conn=SimpleNamespace(transport=SimpleNamespace(
                                  open_session=lambda: FakeChannel(log, output), is_active=lambda: True)))
    job = deploy_job(MODEL_OBJ, "det", model_dir=None, keep=3, force=True, check_only=False, lock_wait=1)
    with pytest.raises(DeployError, match=r"/opt/rkdeploy/models/det/versions/\*\.json.*'\$\(reboot\)'"):
        job(session)
    assert len(log) == 1 and "reboot" not in log[0]
