"""rkdeploy.remote: scripts whose values are never code, and the checks on values before they reach one."""
import subprocess

import pytest

from rkdeploy.remote import RemoteValueError, model_dir, model_name, script, sha12, sha256


def test_a_script_assigns_each_value_quoted_then_the_body():
    assert script('echo "$a"', a="x y", n=3) == "a='x y'\nn=3\necho \"$a\""
    assert script("true") == "true"


@pytest.mark.parametrize("value", ["$(touch pwned)", "`id`", "a'b", 'a"b', "a\nb", "-n", "*", ";rm -rf /", ""])
def test_any_value_stays_data_to_the_shell(tmp_path, value):
    out = subprocess.run(["/bin/sh", "-c", script('printf "%s" "$v"', v=value)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout == value
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("key", ["1a", "a-b", "a b", "", "a;b", "a\n"])
def test_a_parameter_name_that_is_no_shell_variable_is_refused(key):
    with pytest.raises(ValueError, match="not a shell variable name"):
        script("true", **{key: "x"})


@pytest.mark.parametrize("value", [True, 1.5, None, b"x", ["x"]])
def test_a_parameter_of_another_type_is_refused(value):
    with pytest.raises(TypeError, match=f"shell variable v: a str or int, not {type(value).__name__}"):
        script("true", v=value)


def test_a_nul_byte_is_refused_naming_the_variable():
    with pytest.raises(RemoteValueError, match="shell variable v: a NUL byte"):
        script("true", v="a\0b")


@pytest.mark.parametrize("name", ["a", "detector", "yolo_v8.int8-1", "0", "A" * 64])
def test_good_model_names_pass_unchanged(name):
    assert model_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "-x", "_x", ".x", "a/b", "a b", "a\n", "A" * 65, 5, None, "ä"])
def test_bad_model_names_are_refused_saying_what_a_name_may_be(name):
    with pytest.raises(RemoteValueError) as err:
        model_name(name, what="the name")
    assert str(err.value) == (f"the name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with "
                              "a letter or digit")


def test_sha256_and_sha12_take_lowercase_hex_of_their_length_only():
    good = "0123456789abcdef" * 4
    assert sha256(good) == good and sha12(good[:12]) == good[:12]
    for bad in (good.upper(), good[:-1], good + "0", good + "\n", 5, None, "g" * 64):
        with pytest.raises(RemoteValueError, match="not a sha256 \\(64 lowercase hex digits\\)"):
            sha256(bad, what="metadata sha256")
    for bad in (good[:11], good[:13], good[:12].upper(), good[:12] + "\n", None, "z" * 12):
        with pytest.raises(RemoteValueError, match=r"^version .*: not a version id \(12 lowercase hex digits\)$"):
            sha12(bad)
    with pytest.raises(RemoteValueError, match=r"^the sha 'x': not a sha256"):
        sha256("x", what="the sha")
    with pytest.raises(RemoteValueError, match=r"^link 'x': not a version id"):
        sha12("x", what="link")


@pytest.mark.parametrize("value,expected", [
    ("/opt/rkdeploy/models", "/opt/rkdeploy/models"),
    ("/opt/m/", "/opt/m"),
    ("/opt/m//", "/opt/m"),
    ("/", "/"),
    ("//", "/"),
    ("/it's a dir/$(x)", "/it's a dir/$(x)"),
    ("/a/..b/c..", "/a/..b/c.."),
])
def test_model_dirs_are_absolute_paths_kept_as_given_without_trailing_slashes(value, expected):
    assert model_dir(value) == expected


@pytest.mark.parametrize("value", ["relative", "", "/a/../b", "/a/..", "/..", "/a\nb", "/a\rb", "/a\0b", None, 3])
def test_bad_model_dirs_are_refused(value):
    with pytest.raises(RemoteValueError) as err:
        model_dir(value, what="--model-dir")
    assert str(err.value) == f"--model-dir {value!r}: use an absolute path without '..', newline or NUL"


def test_the_default_wording_names_the_value():
    """What a refusal says when the caller names nothing (the words the CLI shows)."""
    with pytest.raises(RemoteValueError, match=r"^model name '\.\.': use 1-64"):
        model_name("..")
    with pytest.raises(RemoteValueError, match=r"^sha256 'x': not a sha256"):
        sha256("x")
    with pytest.raises(RemoteValueError, match=r"^model directory 'x': use an absolute path"):
        model_dir("x")


def test_only_slashes_are_trimmed_from_a_model_dir():
    assert model_dir("/opt/XX/") == "/opt/XX" and model_dir("/models X") == "/models X"
