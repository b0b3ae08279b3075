"""Issue 18: the Debian package, installed on this machine and used the way the README says:
`dpkg -i`, `check` passes on the installed configuration (which captures nothing), the admin
names an interface, the installed binary runs as the package's user with the unit's three
capabilities and answers in the lab with /healthz 200; then `dpkg -r` and `dpkg -P` leave
nothing behind. scripts/test.sh builds the package (scripts/package.sh --lint) and names it in
TPROXY_RELAY_DEB; without it this module is skipped (run scripts/package.sh first)."""
import grp
import json
import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from conftest import HERE, run, wait_for

DEB = os.environ.get("TPROXY_RELAY_DEB")
pytestmark = pytest.mark.skipif(not DEB, reason="TPROXY_RELAY_DEB is not set: scripts/test.sh builds the package and sets it")

LEFT_BEHIND = ["/usr/sbin/tproxy-relay", "/etc/tproxy-relay", "/var/log/tproxy-relay", "/var/lib/tproxy-relay",
               "/lib/systemd/system/tproxy-relay.service", "/usr/share/man/man8/tproxy-relay.8.gz",
               "/usr/share/bash-completion/completions/tproxy-relay", "/usr/share/doc/tproxy-relay"]


def installed():
    return run("dpkg-query", "-W", "-f=${Status}", "tproxy-relay", check=False).stdout.strip()


def user_exists(name="tproxy-relay"):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name="tproxy-relay"):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture
def package():
    if "ok installed" in installed() or "config-files" in installed():
        pytest.fail("a tproxy-relay package is already on this machine: this test would replace it; remove it first")
    assert not any(Path(p).exists() for p in LEFT_BEHIND) and not user_exists(), "leftovers from an earlier install"
    try:
        yield Path(DEB)
    finally:
        run("dpkg", "-P", "tproxy-relay", check=False, timeout=120)


def test_install_name_an_interface_run_remove_purge(lab, package):
    result = run("dpkg", "-i", str(package), check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed() == "install ok installed"
    version = run("/usr/sbin/tproxy-relay", "--version").stdout.strip()
    assert package.name.startswith(f"tproxy-relay_{version}-")
    # The installed default passes check and captures nothing.
    checked = run("/usr/sbin/tproxy-relay", "check", "--config", "/etc/tproxy-relay/relay.yaml", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "interfaces: none" in checked.stdout and "nothing is captured" in checked.stdout
    assert "metrics: /metrics and /healthz on 127.0.0.1:9153" in checked.stdout
    # postinst: the user, its log and state directories; the man page and completions are in place.
    assert user_exists() and group_exists()
    log_dir = os.stat("/var/log/tproxy-relay")
    assert pwd.getpwuid(log_dir.st_uid).pw_name == "tproxy-relay" and oct(log_dir.st_mode & 0o777) == "0o750"
    files = run("dpkg", "-L", "tproxy-relay").stdout.split()
    for path in ["/usr/sbin/tproxy-relay", "/etc/tproxy-relay/relay.yaml", "/etc/tproxy-relay/zones",
                 "/lib/systemd/system/tproxy-relay.service", "/usr/share/man/man8/tproxy-relay.8.gz",
                 "/usr/share/bash-completion/completions/tproxy-relay", "/usr/share/zsh/vendor-completions/_tproxy-relay",
                 "/usr/share/doc/tproxy-relay/copyright"]:
        assert path in files, path
    assert "/etc/tproxy-relay/relay.yaml" in run("dpkg-query", "-W", "-f=${Conffiles}", "tproxy-relay").stdout
    man = run("sh", "-c", "zcat /usr/share/man/man8/tproxy-relay.8.gz").stdout
    assert ".Dt TPROXY-RELAY 8" in man and "check" in man
    # The installed binary needs no Swift toolchain.
    assert "libswift" not in run("ldd", "/usr/sbin/tproxy-relay").stdout

    # The admin names the LAN interface; the relay runs as the package's user with the unit's
    # three ambient capabilities, in the lab's router.
    conf = Path("/etc/tproxy-relay/relay.yaml")
    text = conf.read_text()
    text = re.sub(r"(?m)^  interfaces: \[\].*$", "  interfaces: [lan0]", text)
    text = text.replace("workers: auto", "workers: 2")
    conf.write_text(text)
    caps = "+net_admin,+net_raw,+net_bind_service"
    relay = lab.spawn(lab.rtr, "setpriv", "--reuid=tproxy-relay", "--regid=tproxy-relay", "--init-groups",
                      f"--inh-caps={caps}", f"--ambient-caps={caps}", "/usr/sbin/tproxy-relay", "run", "--config", str(conf))
    try:
        health = wait_for(lambda: _healthz(lab), timeout=15)
        assert health == (200, "ok\n"), health
        out = lab.client("kdig", "+time=2", "+retry=0", "@10.53.2.53", "www.lab.test", "A").stdout
        assert "10.53.2.80" in out and "From 10.53.2.53@53(UDP)" in out
        log = Path("/var/log/tproxy-relay/queries.jsonl")
        assert wait_for(lambda: log.exists() and "www.lab.test" in log.read_text(), timeout=5)
        assert pwd.getpwuid(log.stat().st_uid).pw_name == "tproxy-relay"
    finally:
        relay.terminate()
        relay.wait(timeout=15)
    assert "tproxy_relay" not in lab.nft_tables()

    # dpkg -r keeps the configuration; dpkg -P removes everything.
    result = run("dpkg", "-r", "tproxy-relay", check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not Path("/usr/sbin/tproxy-relay").exists() and conf.exists()
    assert installed() == "deinstall ok config-files"
    result = run("dpkg", "-P", "tproxy-relay", check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    left = [p for p in LEFT_BEHIND if Path(p).exists()]
    assert not left, f"left behind: {left}"
    assert not user_exists() and not group_exists()
    assert installed() == ""


def _healthz(lab):
    reply = lab.exec(lab.rtr, "python3", str(HERE / "httppeer.py"), "get", "127.0.0.1", "9153", "/healthz")
    if reply.returncode != 0:
        return None
    body = json.loads(reply.stdout)
    return (body["status"], body["body"])
