"""One option vocabulary across tasks (README: "Options are long ones only, spelled the same in every task"):
read every task's options from the collection the CLI serves and hold them to it."""
import pytest

from rkdeploy.cli import build_namespace
from rkdeploy.tasks.common import OPTION_HELP

NAMESPACE = build_namespace()
TASKS = {name: NAMESPACE[name] for name in NAMESPACE.task_names}
# Every task that selects boards (has --host) takes all of these.
FLEET_OPTIONS = {"host", "group", "all", "inventory", "parallel", "fail-percent", "accept-new-host-keys", "json"}
# Deliberate exceptions, each with its reason.
EXCEPTIONS = {("report", "json"): "its output is the HTML file; --from reads the other tasks' --json documents"}
# Options whose words other tasks must not spell another way.
VARIANTS = {"hosts", "groups", "all-boards", "inventory-file", "jobs", "concurrency", "fail-percentage",
            "max-fail-percent", "accept-new-hostkeys", "accept-host-keys", "accept-new-keys", "output-json",
            "lock-timeout", "models-dir", "model-directory", "dry-run", "plan"}


# Task.get_arguments() consumes the task's help mapping: read each task's arguments once.
ARGUMENTS = {name: {arg.names[0]: arg for arg in task.get_arguments()} for name, task in TASKS.items()}


def options(task) -> dict[str, object]:
    return ARGUMENTS[next(name for name, t in TASKS.items() if t is task)]    # by identity: two are "rollback"


def help_of(task, option: str):
    return options(task)[option].help


FLEET_TASKS = sorted(name for name, task in TASKS.items() if "host" in options(task))


def test_the_fleet_tasks_are_found():
    assert {"check", "deploy", "provision", "rollback", "report", "convert", "models.list", "models.rollback",
            "models.remove", "server.start", "server.stop", "server.restart", "server.status",
            "perf.run"} <= set(FLEET_TASKS)


@pytest.mark.parametrize("name", FLEET_TASKS)
def test_every_fleet_task_has_the_shared_options(name):
    missing = {o for o in FLEET_OPTIONS - set(options(TASKS[name])) if (name, o) not in EXCEPTIONS}
    assert not missing, f"{name} lacks --{', --'.join(sorted(missing))}"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_shared_options_have_one_help_text_and_no_short_flags(name):
    for option, arg in options(TASKS[name]).items():
        assert all(len(n) > 1 for n in arg.names), f"{name}: short flag in {arg.names}"
        assert option not in VARIANTS, f"{name}: --{option} spells a shared option another way"
        if option in OPTION_HELP:
            assert help_of(TASKS[name], option) == OPTION_HELP[option], (name, option, help_of(TASKS[name], option))


def test_json_means_the_same_everywhere():
    helps = {name: help_of(task, "json") for name, task in TASKS.items() if "json" in options(task)}
    assert set(helps.values()) == {OPTION_HELP["json"]}, helps


def test_the_exceptions_are_still_exceptions():
    """An exception whose option has been added since is removed from the list."""
    for name, option in EXCEPTIONS:
        assert option not in options(TASKS[name]), (name, option)


@pytest.mark.parametrize("name", FLEET_TASKS)
def test_fail_percent_reaches_the_fleet_runner(name, monkeypatch):
    """Wiring: the value of --fail-percent arrives in common.run (as it does for --parallel)."""
    import inspect

    from rkdeploy.tasks import common

    body = TASKS[name].body
    source = inspect.getsource(body)
    params = inspect.signature(body).parameters
    assert "fail_percent" in params and params["fail_percent"].default is None
    assert "fail_percent" in source.split('"""')[-1], f"{name} takes --fail-percent and drops it"
    assert common.run.__code__.co_varnames[:8][-1] == "fail_percent"
