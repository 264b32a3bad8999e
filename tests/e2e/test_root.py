"""Root on lab boards, one way (session.run_as_root): a password given for a passwordless sudo never reaches an
installed file; a root login without any sudo provisions; a user without sudo rights gets the advice that can
help; a sudo that asks for a password gets it on its own stdin (and a sudo that caches nothing is named)."""
import hashlib
import json
import os

import pytest

from rkdeploy.bundle import load_bundle
from rkdeploy.connection import SshSettings
from rkdeploy.gather import gather_facts
from rkdeploy.provision import plan_provision
from rkdeploy.inventory import load as load_inventory
from rkdeploy.session import ROOT_UNCACHED, BoardSession, RootUnavailable
from rkdeploy.remote import script
from tests.e2e.conftest import RKDEPLOY, on_a_terminal, own_lab, rkdeploy_in

pytestmark = pytest.mark.lab

# Typed at the prompt for the passwordless board: had it reached an upload, no installed file would match.
TYPED = "typed-at-the-prompt-LINE"


@pytest.fixture(scope="module")
def root_lab():
    with own_lab("rt", profiles=["rk3588-fresh", "rk3588-root-login", "rk3588-no-sudo-rights"]) as lab:
        yield lab


def board(lab, profile):
    return next(b for b in lab.boards() if b.profile == profile)


def load_bundle_stub():
    """A bundle with one aarch64 runtime: enough for plan_provision to get as far as the root check."""
    from rkdeploy.bundle import Bundle, BundleFile
    return Bundle(version="2.3.2", root=None, layout="1.6+", wheels={}, files=[
        BundleFile(role="runtime", arch="aarch64", path="a/librknnrt.so", dest="/usr/lib/librknnrt.so",
                   sha256="0" * 64, size=1),
        BundleFile(role="server", arch="aarch64", path="a/rknn_server", dest="/usr/bin/rknn_server",
                   sha256="1" * 64, size=1, mode="0755")])


def installed_match_bundle(lab, b, bundles) -> None:
    bundle = load_bundle(bundles / "bundles", "2.3.2")
    files = bundle.for_arch("aarch64", "rk3588")
    out = lab.board_root_exec(b, "sha256sum " + " ".join(f.dest for f in files)).stdout.decode()
    got = {line.split()[1]: line.split()[0] for line in out.splitlines()}
    assert {f.dest: got.get(f.dest) for f in files} == {f.dest: f.sha256 for f in files}
    for f in files:
        assert TYPED not in lab.board_root_exec(b, f"head -c 200 {f.dest}").stdout.decode(errors="replace")


def test_a_password_given_for_a_passwordless_sudo_is_in_no_installed_file(root_lab, bundles):
    fresh = board(root_lab, "rk3588-fresh")
    code, transcript = on_a_terminal([RKDEPLOY, "provision", "--bundle", "2.3.2", "--json", "--host", fresh.name,
                                      "--prompt-for-sudo-password", "--inventory", str(root_lab.inventory)],
                                     TYPED, cwd=bundles)
    assert code == 0, transcript[-3000:]
    doc = json.loads(transcript[transcript.index("{"):transcript.rindex("}") + 1])
    assert doc["boards"][0]["status"] == "changed"
    installed_match_bundle(root_lab, fresh, bundles)
    assert TYPED not in transcript                                  # never echoed


def test_a_root_login_without_any_sudo_provisions(root_lab, bundles):
    root = board(root_lab, "rk3588-root-login")
    assert root_lab.board_root_exec(root, "command -v sudo || echo none").stdout.decode().strip() == "none"
    proc = rkdeploy_in(bundles, "provision", "--bundle", "2.3.2", "--json", "--host", root.name,
                       "--inventory", str(root_lab.inventory))
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["boards"][0]["status"] == "changed", proc.stdout + proc.stderr
    installed_match_bundle(root_lab, root, bundles)
    check = rkdeploy_in(bundles, "check", "--bundle", "2.3.2", "--json", "--host", root.name,
                        "--inventory", str(root_lab.inventory))
    facts = json.loads(check.stdout)["boards"][0]["facts"]
    assert (facts["user"], facts["root_mode"], facts["sudo"]) == ("root", "root", "root")
    assert facts["npu_driver"]["release"] == "0.9.8"


def test_a_user_without_sudo_rights_is_refused_with_advice_that_can_help(root_lab, bundles):
    nos = board(root_lab, "rk3588-no-sudo-rights")
    proc = rkdeploy_in(bundles, "provision", "--bundle", "2.3.2", "--json", "--host", nos.name,
                       "--inventory", str(root_lab.inventory))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    error = json.loads(proc.stdout)["boards"][0]["error"]
    assert "rock may not use sudo" in error and "usermod -aG sudo rock" in error and "log in as root" in error
    assert "--prompt-for-sudo-password" not in proc.stdout + proc.stderr
    check = rkdeploy_in(bundles, "check", "--json", "--host", nos.name, "--inventory", str(root_lab.inventory))
    entry = json.loads(check.stdout)["boards"][0]
    assert entry["facts"]["root_mode"] == "no-sudo-rights"
    driver = [f for f in entry["findings"] if f["component"] == "driver"]
    assert driver and "usermod -aG sudo rock" in driver[0]["fix"]
    assert "--prompt-for-sudo-password" not in check.stdout


def test_a_sudo_password_goes_to_sudo_alone_and_a_sudo_that_caches_nothing_is_named(tmp_path):
    """The lab's real sudo (1.9.13, no tty): the wrapper's payload arrives intact as root; with
    timestamp_timeout=0 the session says why instead of 'a password is required'."""
    with own_lab("su", profiles=["rk3588-sudo-password"]) as lab:
        b = lab.boards()[0]
        inv = load_inventory(lab.inventory)
        target = inv.boards[b.name]
        payload = tmp_path / "payload.bin"
        payload.write_bytes(b"line one\n" + os.urandom(300000) + b"\nlast")
        session = BoardSession(target, SshSettings(known_hosts=lab.known_hosts, sudo_password="rocklab"))
        try:
            facts = gather_facts(session)            # the probe: the password to sudo -S -v, root part by sudo -n
            assert (facts.root_mode, facts.root_password, facts.sudo) == ("sudo-password", "ok", "ok")
            assert str(facts.npu_driver) == "0.9.7" and session.root_mode == "sudo-password"
            done = session.send_as_root(str(payload), script('cat > "$f"; id -u\n', f="/root/payload.bin"))
            assert done.return_code == 0 and done.stdout.strip() == "0", done.stderr
            got = lab.board_root_exec(b, "sha256sum < /root/payload.bin").stdout.decode().split()[0]
            assert got == hashlib.sha256(payload.read_bytes()).hexdigest()
            lab.board_root_exec(b, "echo 'Defaults timestamp_timeout=0' > /etc/sudoers.d/zz; chmod 440 /etc/sudoers.d/zz")
            with pytest.raises(RootUnavailable) as raised:
                session.run_as_root("true")
            assert str(raised.value) == ROOT_UNCACHED
            facts = gather_facts(session)
            assert (facts.root_password, facts.sudo, facts.npu_driver) == ("uncached", "no", None)
            assert "timestamp_timeout=0" in plan_provision(b.name, facts, load_bundle_stub()).refused
            wrong = BoardSession(target, SshSettings(known_hosts=lab.known_hosts, sudo_password="wrong"))
            wrong.root_mode = "sudo-password"
            try:
                with pytest.raises(RootUnavailable, match="sudo refused the password"):
                    wrong.run_as_root("true")
            finally:
                wrong.close()
        finally:
            session.close()
