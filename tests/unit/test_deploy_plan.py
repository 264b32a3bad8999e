"""Deploy plans, without SSH: where a model goes, under which name, what the board says is there, why it
would not run, and what a deploy does about it. Boards are light-probe outputs (what a deploy reads), models
generated RKNN files; the messages a user reads are asserted word for word."""
import dataclasses
import datetime as dt
import json

import pytest

from rkdeploy.deploy import DeployError, DeployPlan, _metadata, board_model_dir, model_name, model_state, \
    plan_deploy, validate
from rkdeploy.inventory import Board
from rkdeploy.probe import parse_probe
from rkdeploy.rknn_model import read_model
from tests.lab import modelgen

RUNTIME_232 = "runtime_version=/usr/lib/librknnrt.so|librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\n"


def board(*lines: str, soc: str = "rk3588", runtime: str = RUNTIME_232, free: int | None = 29144320,
          state: str = "writable") -> "BoardFacts":  # noqa: F821
    """A board as the light probe deploy runs reports it (the model section for /opt/rkdeploy/models)."""
    text = (f"compatible=radxa,board rockchip,{soc} \n" if soc else "") + runtime
    text += f"model_dir=/opt/rkdeploy/models|{state}\n"
    text += f"model_dir_free={free}\n" if free is not None else ""
    return parse_probe(text + "".join(line + "\n" for line in lines) + "end=ok\n")


def version(name: str, sha256: str, deployed_at: str) -> str:
    """A model_version line: one kept version's metadata, as the probe prints it."""
    return "model_version=" + json.dumps({"name": name, "sha256": sha256, "deployed_at": deployed_at})


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An rk3588 model built by rknn-toolkit2 2.3.1 (file format 6)."""
    path = tmp_path_factory.mktemp("models") / "det.rknn"
    return read_model(modelgen.write(path, soc="rk3588", format=6, toolkit="2.3.1-source_code"))


def sized(model, size: int):
    return dataclasses.replace(model, size=size)


# -- where: the model directory ------------------------------------------------------------------------------

def test_the_model_directory_is_the_option_else_the_inventorys_else_the_default():
    plain = Board(name="b1", host="192.0.2.1")
    custom = Board(name="b2", host="192.0.2.2", vars={"model_dir": "/data/models/"})
    assert board_model_dir(plain, None) == "/opt/rkdeploy/models"
    assert board_model_dir(plain, "") == "/opt/rkdeploy/models"
    assert board_model_dir(custom, None) == "/data/models"                  # a trailing slash dropped
    assert board_model_dir(custom, "/srv/m") == "/srv/m"                    # the option wins
    assert board_model_dir(Board(name="b3", host="h", vars={"model_dir": ""}), None) == "/opt/rkdeploy/models"


def test_a_bad_model_directory_is_named_by_where_it_came_from():
    with pytest.raises(DeployError) as err:
        board_model_dir(Board(name="b1", host="h"), "models")
    assert str(err.value) == "--model-dir 'models': use an absolute path without '..', newline or NUL"
    with pytest.raises(DeployError) as err:
        board_model_dir(Board(name="b2", host="h", vars={"model_dir": "/opt/../etc"}), None)
    assert str(err.value) == ("the inventory's model_dir of b2 '/opt/../etc': use an absolute path without '..', "
                              "newline or NUL")
    assert err.value.__cause__ is None and err.value.__suppress_context__


# -- what: the model's name on the board ---------------------------------------------------------------------

@pytest.mark.parametrize("path, name", [
    ("/home/rock/models/yolov5s.rknn", "yolov5s"),
    ("det.rknn", "det"),
    ("/m/det.rknn.rknn", "det.rknn"),           # only the last .rknn is the extension
    ("/m/det.RKNN", "det.RKNN"),
    ("/m/det.rknn.bak", "det.rknn.bak"),
    ("/m/det", "det"),
])
def test_a_models_name_is_its_file_name_without_rknn(model, path, name):
    assert model_name(dataclasses.replace(model, path=path), None) == name


def test_a_name_given_wins_over_the_file_name(model):
    assert model_name(model, "front-door") == "front-door"


@pytest.mark.parametrize("path, name, message", [
    ("/m/my model.rknn", None, "model name 'my model': use 1-64 letters, digits, '.', '_' or '-', starting with a "
                               "letter or digit (pass --name)"),
    ("/m/det.rknn", "", "model name '': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
                        "digit (pass --name)"),
])
def test_a_name_that_cannot_go_to_a_board_says_to_pass_name(model, path, name, message):
    with pytest.raises(DeployError) as err:
        model_name(dataclasses.replace(model, path=path), name)
    assert str(err.value) == message and err.value.__suppress_context__


# -- what the board has: model_state -------------------------------------------------------------------------

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_a_board_without_the_model_has_no_active_version_and_none_kept():
    assert model_state(board(), "det", "/opt/rkdeploy/models") == ("", [])


def test_the_active_version_is_the_link_targets_sha12_and_the_kept_ones_are_oldest_first():
    facts = board("model_current=det|versions/cccccccccccc.rknn",
                  version("det", C, "2026-03-01T00:00:00+00:00"), version("det", A, "2026-01-01T00:00:00+00:00"),
                  version("seg", B, "2025-01-01T00:00:00+00:00"), version("det", B, "2026-02-01T00:00:00+00:00"))
    active, versions = model_state(facts, "det", "/opt/rkdeploy/models")
    assert active == "cccccccccccc"
    assert [v["sha256"] for v in versions] == [A, B, C]


def test_a_version_without_a_deployment_date_counts_as_the_oldest():
    facts = board(version("det", A, "2026-01-01"), "model_version=" + json.dumps({"name": "det", "sha256": B}))
    assert [v["sha256"] for v in model_state(facts, "det", "/m")[1]] == [B, A]


def test_metadata_that_is_not_an_object_or_of_another_model_is_not_this_models():
    facts = board(version("det", A, "2026-01-01"), version("seg", "not a sha", "2026-01-01"))
    facts.model_versions.append(["det"])
    assert model_state(facts, "det", "/m") == ("", [{"name": "det", "sha256": A, "deployed_at": "2026-01-01"}])


@pytest.mark.parametrize("target", [
    "../../etc/passwd", "versions/abababababab", "abababababab.rknn", "versions/ABABABABABAB.rknn",
    "versions/abababababab.rknn.rknn", "versions/ababababababab.rknn", "versions/versions/abababababab.rknn",
    "versions/.rknn",
])
def test_a_current_link_that_does_not_point_to_a_kept_version_is_not_touched(target):
    with pytest.raises(DeployError) as err:
        model_state(board(f"model_current=det|{target}"), "det", "/data/m")
    assert str(err.value) == (f"/data/m/det/current.rknn on the board points to {target!r}, not to "
                              "versions/<12 hex digits>.rknn: not touching it (fix or remove that link)")


@pytest.mark.parametrize("sha, shown", [("$(reboot)", "'$(reboot)'"), (None, "None"), (A.upper(), repr(A.upper()))])
def test_a_kept_versions_bad_checksum_names_the_file_it_came_from(sha, shown):
    facts = board(version("det", A, "2026-01-01"), "model_version=" + json.dumps({"name": "det", "sha256": sha}))
    with pytest.raises(DeployError) as err:
        model_state(facts, "det", "/data/m")
    assert str(err.value) == (f"a version's metadata in /data/m/det/versions/*.json on the board is bad: sha256 "
                              f"{shown}: not a sha256 (64 lowercase hex digits); not using it (fix or remove that file)")
    assert err.value.__suppress_context__


# -- why it would not run: validate --------------------------------------------------------------------------

def test_a_board_that_can_run_the_model_has_no_problems(model):
    assert validate(model, board()) == []
    assert validate(model, board(soc="rk3588s")) == []            # same NPU: the runtime accepts it


def test_a_board_without_a_device_tree_soc_is_a_problem(model):
    assert validate(model, board(soc="")) == ["the board's SoC is unknown (no device tree compatible string)"]


def test_a_model_for_another_soc_says_what_the_runtime_would_say_and_how_to_rebuild(model):
    assert validate(model, board(soc="rk3568")) == [
        "the model is built for rk3588, rk3588s but the board is rk3568: the runtime would say 'This rknn model "
        "is for rk3588, but current platform is rk3568'. Rebuild it with target_platform='rk3568'"]


def test_a_model_for_several_socs_names_every_one_and_the_first_as_the_runtime_does(model):
    multi = dataclasses.replace(model, target_platforms=("rk3566", "rv1106"))
    assert validate(multi, board(soc="rk3588")) == [
        "the model is built for rk3566, rk3568, rv1106, rv1103 but the board is rk3588: the runtime would say "
        "'This rknn model is for rk3566, but current platform is rk3588'. Rebuild it with target_platform='rk3588'"]
    assert validate(multi, board(soc="rv1103")) == []


def test_a_board_without_a_runtime_is_told_to_provision(model):
    assert validate(model, board(runtime="")) == ["no librknnrt on the board: run inv provision first"]


def runtime(release: str) -> str:
    return f"runtime_version=/usr/lib/librknnrt.so|librknnrt version: {release} (e6fe0c678@2023-05-25T08:09:53)\n"


@pytest.mark.parametrize("board_release, fmt, said", [
    ("1.5.0", 6, "'Invalid RKNN model version 6'"),         # runtimes up to 1.5.0 know no format 6
    ("1.4.0", 7, "'Invalid RKNN model version 6'"),
    ("1.5.2", 6, "'RKNN model version is …, but current librknnrt.so is support model version <= …'"),
    ("1.5.0", 5, "'RKNN model version is …, but current librknnrt.so is support model version <= …'"),
    ("2.3.0", 6, "'RKNN model version is …, but current librknnrt.so is support model version <= …'"),
])
def test_a_model_newer_than_the_boards_runtime_says_how_loading_fails_and_both_fixes(model, board_release, fmt, said):
    older = board(runtime=runtime(board_release))
    assert validate(dataclasses.replace(model, format_version=fmt), older) == [
        f"the model was built by rknn-toolkit2 2.3.1, newer than the board's librknnrt {board_release}: loading "
        f"fails with {said}. Upgrade the board (inv provision --bundle 2.3.1) or rebuild the model with "
        f"rknn-toolkit2=={board_release}"]


@pytest.mark.parametrize("toolkit, board_release", [
    ("2.3.1-source_code", "2.3.1"),            # the same release
    ("2.3.0", "2.3.2"),                        # older
    ("2.3.2b1+abcdef", "2.3.2"),               # a pre-release of the board's release: same numbers
    ("2.3.2.1", "2.3.2"),                      # only major.minor.patch count
    ("", "1.4.0"),                             # no readable toolkit version: nothing to compare
])
def test_a_model_no_newer_than_the_runtime_is_fine(model, toolkit, board_release):
    built = dataclasses.replace(model, toolkit_version=toolkit)
    assert validate(built, board(runtime=runtime(board_release))) == []


def test_a_model_one_patch_newer_than_the_runtime_is_a_problem(model):
    problems = validate(dataclasses.replace(model, toolkit_version="2.3.2"), board(runtime=runtime("2.3.1")))
    assert len(problems) == 1 and problems[0].startswith("the model was built by rknn-toolkit2 2.3.2, newer than")


def test_the_model_needs_its_size_plus_a_mib_free(model):
    big = sized(model, 50 * 1024 * 1024 + 1000)                  # 51200 KiB (rounded down) + 1024 KiB margin
    assert validate(big, board(free=52224)) == []
    assert validate(big, board(free=52223)) == ["not enough space for the model: 50 MiB free, it needs 51 MiB"]
    assert validate(big, board(free=0)) == ["not enough space for the model: 0 MiB free, it needs 51 MiB"]
    assert validate(big, board(free=None)) == []                  # the board did not say: not a problem
    assert validate(sized(model, 2000 * 1024 * 1024), board(free=1000 * 1024)) == [
        "not enough space for the model: 1000 MiB free, it needs 2001 MiB"]


def test_every_problem_is_listed_in_order(model):
    problems = validate(sized(model, 3 * 1024 * 1024), board(soc="rk3568", runtime="", free=10))
    assert problems == [
        "the model is built for rk3588, rk3588s but the board is rk3568: the runtime would say 'This rknn model "
        "is for rk3588, but current platform is rk3568'. Rebuild it with target_platform='rk3568'",
        "no librknnrt on the board: run inv provision first",
        "not enough space for the model: 0 MiB free, it needs 4 MiB"]


# -- what to do: plan_deploy ---------------------------------------------------------------------------------

def test_a_first_deploy_uploads_into_a_new_model_directory(model):
    plan = plan_deploy(model, "det", board(), "rock5b", keep=3, force=False)
    assert plan == DeployPlan(board="rock5b", name="det", sha12=model.sha256[:12], action="upload", problems=[],
                              forced=False, prepare=True, prepare_root=False, prune=[], bytes=model.size)


def test_a_first_deploy_where_the_model_directory_is_not_writable_needs_root_to_make_it(model):
    for state in ("absent", "present"):
        plan = plan_deploy(model, "det", board(state=state), "b", keep=3, force=False)
        assert plan.prepare and plan.prepare_root and plan.action == "upload"
    parent = board("model_dir_parent=writable", state="absent")
    assert not plan_deploy(model, "det", parent, "b", keep=3, force=False).prepare_root


def test_a_model_already_active_needs_nothing_even_where_it_would_now_be_refused(model):
    sha12 = model.sha256[:12]
    facts = board(f"model_current=det|versions/{sha12}.rknn", version("det", model.sha256, "2026-01-01"),
                  runtime="", state="present")
    assert plan_deploy(model, "det", facts, "b", keep=1, force=False) == DeployPlan(
        board="b", name="det", sha12=sha12, action="none")


def test_a_model_the_board_cannot_run_is_refused_and_nothing_else_is_planned(model):
    plan = plan_deploy(model, "det", board(soc="rk3568", state="absent"), "b", keep=3, force=False)
    assert plan == DeployPlan(board="b", name="det", sha12=model.sha256[:12], action="refused", problems=[
        "the model is built for rk3588, rk3588s but the board is rk3568: the runtime would say 'This rknn model "
        "is for rk3588, but current platform is rk3568'. Rebuild it with target_platform='rk3568'"])


def test_forcing_a_refused_model_uploads_it_and_records_the_problems(model):
    plan = plan_deploy(model, "det", board(runtime=""), "b", keep=3, force=True)
    assert (plan.action, plan.forced, plan.problems) == ("upload", True, ["no librknnrt on the board: run inv provision first"])
    assert plan_deploy(model, "det", board(), "b", keep=3, force=True).forced is False      # nothing to force


def test_a_kept_version_is_activated_without_sending_it_again(model):
    facts = board("model_current=det|versions/aaaaaaaaaaaa.rknn", version("det", A, "2026-01-01"),
                  version("det", model.sha256, "2026-01-02"))
    plan = plan_deploy(model, "det", facts, "b", keep=3, force=False)
    assert plan == DeployPlan(board="b", name="det", sha12=model.sha256[:12], action="activate", prune=[], bytes=0)


def test_a_model_whose_link_exists_without_metadata_needs_no_new_directory(model):
    plan = plan_deploy(model, "det", board("model_current=det|versions/aaaaaaaaaaaa.rknn", state="present"), "b",
                       keep=3, force=False)
    assert (plan.action, plan.prepare, plan.prepare_root) == ("upload", False, False)


def test_kept_metadata_without_a_link_needs_no_new_directory(model):
    plan = plan_deploy(model, "det", board(version("det", A, "2026-01-01"), state="present"), "b", keep=3, force=False)
    assert (plan.action, plan.prepare, plan.prepare_root) == ("upload", False, False)


def kept(*shas: str) -> list[str]:
    """Kept versions, the first the oldest; the last one is active."""
    return [f"model_current=det|versions/{shas[-1][:12]}.rknn"] + [
        version("det", sha, f"2026-01-{day:02}") for day, sha in enumerate(shas, 1)]


@pytest.mark.parametrize("keep, pruned", [
    (1, [A, B, C]),                 # keep only the one deployed now
    (2, [A, B]),
    (3, [A]),
    (4, []),
    (9, []),
    (0, [A, B, C]),                 # nonsense, read as 1: the new one stays
])
def test_an_upload_prunes_the_oldest_versions_beyond_keep_counting_the_new_one(model, keep, pruned):
    plan = plan_deploy(model, "det", board(*kept(A, B, C)), "b", keep=keep, force=False)
    assert plan.action == "upload" and plan.prune == [s[:12] for s in pruned]


def test_activating_a_kept_version_never_prunes_it_and_counts_it_once(model):
    facts = board(*kept(A, model.sha256, B, C))
    assert plan_deploy(model, "det", facts, "b", keep=2, force=False).prune == [A[:12], B[:12]]
    assert plan_deploy(model, "det", facts, "b", keep=4, force=False).prune == []


def test_a_board_whose_link_cannot_be_trusted_stops_the_plan_naming_the_model_directory(model):
    facts = board("model_current=det|/etc/passwd")
    with pytest.raises(DeployError, match=r"^/opt/rkdeploy/models/det/current.rknn on the board points to "):
        plan_deploy(model, "det", facts, "b", keep=3, force=False)
    with pytest.raises(DeployError, match=r"^/data/m/det/current.rknn on the board points to "):
        plan_deploy(model, "det", facts, "b", keep=3, force=False, model_dir="/data/m")


def test_a_plan_as_a_dict_holds_every_field():
    plan = DeployPlan(board="b", name="det", sha12="abababababab", action="upload", problems=["p"], forced=True,
                      prepare=True, prepare_root=True, prune=["cdcdcdcdcdcd"], bytes=42)
    assert plan.to_dict() == {"board": "b", "name": "det", "sha12": "abababababab", "action": "upload",
                              "problems": ["p"], "forced": True, "prepare": True, "prepare_root": True,
                              "prune": ["cdcdcdcdcdcd"], "bytes": 42}
    assert DeployPlan(board="b", name="det", sha12="abababababab", action="none").to_dict() == {
        "board": "b", "name": "det", "sha12": "abababababab", "action": "none", "problems": [], "forced": False,
        "prepare": False, "prepare_root": False, "prune": [], "bytes": 0}


# -- what is written next to a version: _metadata ------------------------------------------------------------

def test_a_versions_metadata_says_what_the_model_is_who_deployed_it_and_when(model, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ci")
    monkeypatch.setattr("socket.gethostname", lambda: "build-host")
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    text = _metadata(model, "front-door")
    meta = json.loads(text)
    assert list(meta) == sorted(meta)                         # sorted keys: the same model writes the same line
    deployed_at = dt.datetime.fromisoformat(meta.pop("deployed_at"))
    assert deployed_at.utcoffset() == dt.timedelta(0) and deployed_at.microsecond == 0
    assert before <= deployed_at <= dt.datetime.now(dt.timezone.utc)
    assert meta == {"name": "front-door", "sha256": model.sha256, "size": model.size,
                    "toolkit": "2.3.1-source_code", "platforms": ["rk3588"], "format": 6, "source": "det.rknn",
                    "deployed_by": "ci@build-host", "recipe": None}
    assert "\n" not in text                                   # one line: the probe reads it with one `read`


def test_a_versions_metadata_carries_the_recipe_that_made_this_very_file(model, tmp_path):
    path = tmp_path / "made.rknn"
    path.write_bytes(b"RKNN")
    recipe = {"model_sha256": model.sha256, "onnx": "yolov5s.onnx", "quantize": True}
    (tmp_path / "made.rknn.recipe.json").write_text(json.dumps(recipe))
    assert json.loads(_metadata(dataclasses.replace(model, path=str(path)), "det"))["recipe"] == recipe


def test_the_source_of_a_model_given_by_a_relative_path_is_its_file_name(model):
    assert json.loads(_metadata(dataclasses.replace(model, path="det.rknn"), "det"))["source"] == "det.rknn"
    assert json.loads(_metadata(dataclasses.replace(model, path="out/v2/det.rknn"), "det"))["source"] == "det.rknn"
