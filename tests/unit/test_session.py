"""Root on the board, one way: the wrapper scripts of session.run_as_root run locally with /bin/sh (and bash,
the lab's login shell) against a fake `sudo` that behaves as sudo does without a tty: NOPASSWD (never reads
stdin), a password (read from stdin with -S, the credential cached per parent process), a password with
timestamp_timeout=0 (nothing cached), a user without sudo rights; and the probe's root-mode detection."""
import shutil
import subprocess
from pathlib import Path

import pytest

from rkdeploy.connection import SshSettings
from rkdeploy.inventory import Board
from rkdeploy.probe import parse_probe, probe_script
from rkdeploy.remote import script
from rkdeploy.session import (PASSWORD_REFUSED_EXIT, ROOT_MODE_FUNCTION, ROOT_UNCACHED, BoardSession, CommandResult,
                              RootUnavailable, root_command, root_failure)

PASSWORD = "s3cret pass"

# Options as sudo takes them; the command runs as the caller (this is about stdin and the cache, not about
# privileges). The credential cache is keyed by the parent process, as sudo's is without a tty.
FAKE_SUDO = r"""#!/bin/sh
n=; S=; v=
while [ $# -gt 0 ]; do
  case "$1" in -n) n=1 ;; -S) S=1 ;; -v) v=1 ;; -p) shift ;; --) shift; break ;; -*) ;; *) break ;; esac
  shift
done
ts="$FAKE_SUDO_DIR/ts-$PPID"
case "$FAKE_SUDO_MODE" in
  nopasswd) ;;
  refuse)
    if [ -n "$v" ]; then echo "Sorry, user me may not run sudo on fake." >&2; exit 1; fi
    if [ -n "$n" ]; then echo "sudo: a password is required" >&2; exit 1; fi
    IFS= read -r pw; echo "me is not in the sudoers file." >&2; exit 1 ;;
  password|timestamp0)
    if [ -f "$ts" ]; then :
    elif [ -n "$n" ]; then echo "sudo: a password is required" >&2; exit 1
    else
      IFS= read -r pw || pw=
      if [ "$pw" != "$FAKE_SUDO_PASSWORD" ]; then
        echo "Sorry, try again." >&2; echo "sudo: 1 incorrect password attempt" >&2; exit 1
      fi
      [ "$FAKE_SUDO_MODE" = timestamp0 ] || : > "$ts"
    fi ;;
esac
[ -n "$v" ] && exit 0
[ $# = 0 ] && exit 0
"$@"
"""
FAKE_ID = """#!/bin/sh
if [ "$1" = -u ]; then echo "$FAKE_UID"; else echo "uid=$FAKE_UID(me) gid=$FAKE_UID(me) groups=$FAKE_UID(me)"; fi
"""


@pytest.fixture
def board_env(tmp_path):
    """A PATH with the fake sudo and id and only the tools the scripts use (so a host's own sudo is not found)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "bash", "cat", "dd", "head", "tr", "rm", "mkdir"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "id").write_text(FAKE_ID)
    (bin_dir / "id").chmod(0o755)
    (tmp_path / "ts").mkdir()

    def env(mode: str | None, uid: int = 1000) -> dict:
        sudo = bin_dir / "sudo"
        if mode is None:
            sudo.unlink(missing_ok=True)
        else:
            sudo.write_text(FAKE_SUDO)
            sudo.chmod(0o755)
        return {"PATH": str(bin_dir), "FAKE_SUDO_MODE": mode or "", "FAKE_SUDO_DIR": str(tmp_path / "ts"),
                "FAKE_SUDO_PASSWORD": PASSWORD, "FAKE_UID": str(uid), "HOME": str(tmp_path), "LC_ALL": "C"}
    return env


PAYLOAD = b"first line of the file\n\x00\x01binary\xff\nno newline at the end"


def run_wrapper(env, shell, command, stdin: bytes) -> subprocess.CompletedProcess:
    """As the board's login shell runs an SSH command: `$SHELL -c COMMAND`, stdin from the channel."""
    return subprocess.run([shell, "-c", command], input=stdin, env=env, capture_output=True, timeout=30)


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("mode, sudo", [("root", "nopasswd"), ("root", None), ("sudo", "nopasswd"),
                                        ("sudo-password", "password")])
@pytest.mark.parametrize("password", [None, PASSWORD])
def test_the_payload_reaches_the_root_script_byte_for_byte_and_never_holds_the_password(
        board_env, tmp_path, shell, mode, sudo, password):
    if mode == "sudo-password" and password is None:
        with pytest.raises(RootUnavailable, match="--prompt-for-sudo-password"):
            root_command(mode, "cat", password)
        return
    env = board_env(sudo)
    out = tmp_path / "uploaded"
    command, preamble = root_command(mode, script('cat > "$out"\n', out=str(out)), password)
    done = run_wrapper(env, shutil.which(shell), command, preamble + PAYLOAD)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == PAYLOAD
    assert PASSWORD.encode() not in out.read_bytes() and PASSWORD not in command
    assert (preamble != b"") == (mode == "sudo-password")      # the password line goes only where sudo reads it


def test_the_old_way_put_the_password_line_into_the_file_on_a_nopasswd_board(board_env, tmp_path):
    """What the wrapper replaces: `sudo -S sh -c 'cat > f'` with the password before the payload."""
    out = tmp_path / "uploaded"
    done = run_wrapper(board_env("nopasswd"), shutil.which("sh"), f"sudo -S -p '' sh -c 'cat > {out}'",
                       (PASSWORD + "\n").encode() + PAYLOAD)
    assert done.returncode == 0 and out.read_bytes().startswith(PASSWORD.encode())


def test_the_password_goes_to_sudo_on_its_own_stdin_and_the_root_script_runs_as_a_child_of_the_same_shell(
        board_env, tmp_path):
    """bash runs the last command of `bash -c` without a fork; had the wrapper ended in `sudo -n …` (or
    `exec sudo`), the fake sudo (like the real one, without a tty) would not find the credential."""
    env = board_env("password")
    for shell in ("sh", "bash"):
        bad = run_wrapper(env, shutil.which(shell), f"IFS= read -r p; printf '%s\\n' \"$p\" | sudo -S -v; "
                          "exec sudo -n true", (PASSWORD + "\n").encode())
        assert bad.returncode == 1 and b"a password is required" in bad.stderr
    command, preamble = root_command("sudo-password", "head -c 5", PASSWORD)
    done = run_wrapper(env, shutil.which("bash"), command, preamble + b"12345")
    assert done.returncode == 0 and done.stdout == b"12345"


def test_a_wrong_password_stops_before_the_script_with_its_own_exit_code_and_message(board_env, tmp_path):
    out = tmp_path / "uploaded"
    command, preamble = root_command("sudo-password", script('cat > "$out"\n', out=str(out)), "wrong")
    done = run_wrapper(board_env("password"), shutil.which("sh"), command, preamble + PAYLOAD)
    assert done.returncode == PASSWORD_REFUSED_EXIT and not out.exists()
    problem = root_failure("sudo-password", CommandResult(done.stdout.decode(), done.stderr.decode(), done.returncode))
    assert "sudo refused the password" in problem


def test_a_sudo_that_caches_nothing_is_told_apart_from_a_failing_script(board_env, tmp_path):
    """timestamp_timeout=0: sudo -v accepts the password and the next sudo -n still asks (measured on the
    lab's sudo 1.9.13); the session says so instead of passing on sudo's 'a password is required'."""
    command, preamble = root_command("sudo-password", "cat > /dev/null", PASSWORD)
    done = run_wrapper(board_env("timestamp0"), shutil.which("sh"), command, preamble + PAYLOAD)
    result = CommandResult(done.stdout.decode(), done.stderr.decode(), done.returncode)
    assert done.returncode == 1 and root_failure("sudo-password", result) == ROOT_UNCACHED
    assert "timestamp_timeout=0" in ROOT_UNCACHED
    failing = CommandResult("", "cat: x: No such file\n", 1)
    assert root_failure("sudo-password", failing) == ""


@pytest.mark.parametrize("sudo, uid, expected", [
    ("nopasswd", 0, "root"), (None, 0, "root"), ("nopasswd", 1000, "sudo"), ("password", 1000, "sudo-password"),
    ("timestamp0", 1000, "sudo-password"), ("refuse", 1000, "no-sudo-rights"), (None, 1000, "no-sudo"),
])
def test_the_root_mode_function_tells_every_kind_of_board_apart(board_env, sudo, uid, expected):
    done = subprocess.run(["sh", "-c", ROOT_MODE_FUNCTION + 'rkd_root_mode; echo "$rkd_mode"'],
                          env=board_env(sudo, uid), capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == expected, done.stderr


@pytest.mark.parametrize("sudo, uid, password, mode, password_state, sudo_fact", [
    ("nopasswd", 1000, None, "sudo", "", "ok"),
    ("nopasswd", 1000, PASSWORD, "sudo", "", "ok"),
    ("nopasswd", 0, PASSWORD, "root", "", "root"),
    (None, 0, None, "root", "", "root"),
    ("password", 1000, None, "sudo-password", "", "no"),
    ("password", 1000, PASSWORD, "sudo-password", "ok", "ok"),
    ("password", 1000, "wrong", "sudo-password", "refused", "no"),
    ("timestamp0", 1000, PASSWORD, "sudo-password", "uncached", "no"),
    ("refuse", 1000, PASSWORD, "no-sudo-rights", "", "no"),
    (None, 1000, None, "no-sudo", "", "no"),
])
def test_the_probe_reads_the_root_mode_and_the_password_state_on_a_fake_board(
        board_env, sudo, uid, password, mode, password_state, sudo_fact):
    env = board_env(sudo, uid)
    env["PATH"] += ":/usr/bin:/bin" if sudo is not None or not any(
        Path(d, "sudo").exists() for d in ("/usr/bin", "/bin")) else ""
    done = subprocess.run(["sh", "-c", probe_script(sudo_password_on_stdin=password is not None)],
                          input=(password + "\n").encode() if password else b"", env=env, capture_output=True,
                          timeout=60)
    facts = parse_probe(done.stdout)
    assert (facts.root_mode, facts.root_password, facts.sudo) == (mode, password_state, sudo_fact), done.stderr
    assert not password or password.encode() not in done.stdout + done.stderr


@pytest.mark.parametrize("lines, mode, sudo", [
    ("root_mode=root\nsudo=root\n", "root", "root"),
    ("root_mode=sudo\nsudo=ok\n", "sudo", "ok"),
    ("root_mode=sudo-password\nsudo=no\n", "sudo-password", "no"),
    ("root_mode=sudo-password\nroot_password=ok\nsudo=ok\n", "sudo-password", "ok"),
    ("root_mode=no-sudo-rights\nsudo=no\n", "no-sudo-rights", "no"),
    ("root_mode=no-sudo\nsudo=no\n", "no-sudo", "no"),
    ("root_mode=no-sudo\n", "no-sudo", "no"),                 # the light probe prints no sudo line
    ("sudo=root\n", "root", "root"),                           # an older probe's output: derived
    ("sudo=ok\n", "sudo", "ok"),
    ("root_mode=$(reboot)\n", "", ""),                         # not a mode: unknown, never passed on
])
def test_the_probe_parser_reads_every_root_mode(lines, mode, sudo):
    facts = parse_probe(lines + "end=ok\n")
    assert (facts.root_mode, facts.sudo) == (mode, sudo)


@pytest.mark.parametrize("mode, says", [("no-sudo", "install sudo"), ("no-sudo-rights", "usermod -aG sudo"),
                                        ("sudo-password", "--prompt-for-sudo-password")])
def test_run_as_root_refuses_before_anything_is_sent_where_the_session_cannot_become_root(mode, says, tmp_path):
    session = BoardSession(Board(name="b", host="192.0.2.1"), SshSettings())
    session.root_mode = mode
    for call in (lambda: session.run_as_root("true"), lambda: session.send_as_root(__file__, "cat")):
        with pytest.raises(RootUnavailable, match=says) as raised:
            call()
        assert mode == "sudo-password" or "--prompt-for-sudo-password" not in str(raised.value)
    assert session.commands == 0 and session._conn is None


def test_a_password_is_never_sent_to_a_root_login_or_a_passwordless_sudo():
    for mode in ("root", "sudo"):
        command, preamble = root_command(mode, "cat", PASSWORD)
        assert preamble == b"" and PASSWORD not in command
    with pytest.raises(RootUnavailable, match="line break"):
        root_command("sudo-password", "cat", "two\nlines")

