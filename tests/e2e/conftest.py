"""Fixtures for end-to-end tests: a namespace lab per test module, relays started inside it.

Everything runs inside namespaces the fixtures create (names carry a random suffix) and is torn
down in finalizers, also when a test fails. Traffic goes only to 10.53.0.0/16 and fd53::/16.
"""
import ctypes
import json
import os
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("TPROXY_RELAY_BIN", str(ROOT / ".build" / "debug" / "tproxy-relay"))
HERE = Path(__file__).resolve().parent


def run(*args, check=True, timeout=30, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout, **kw)


class Lab:
    def __init__(self):
        self.suffix = "t" + secrets.token_hex(3)
        self.cli = f"tr-cli-{self.suffix}"
        self.rtr = f"tr-rtr-{self.suffix}"
        self.up = f"tr-up-{self.suffix}"
        self.state = Path(f"/tmp/tproxy-relay-lab-{self.suffix}")
        self.background = []

    def start(self):
        run(BINARY, "lab", "up", "--name", self.suffix, timeout=60)

    def stop(self):
        for p in self.background:
            if p.poll() is None:
                p.kill()
                p.wait()
        run(BINARY, "lab", "down", "--name", self.suffix, check=False, timeout=60)

    def exec(self, namespace, *args, check=False, timeout=30):
        return run("ip", "netns", "exec", namespace, *args, check=check, timeout=timeout)

    def client(self, *args, **kw):
        return self.exec(self.cli, *args, **kw)

    def query(self, server, name="www.lab.test", rdtype="A", timeout=3.0, edns=False, source=None, tcp=False, ecs=None):
        """A Python client in `cli`: returns the answer with the address and port it came from."""
        args = ["python3", str(HERE / "dnsclient.py"), "query", server, name, rdtype, "--timeout", str(timeout)]
        if edns:
            args.append("--edns")
        if source:
            args += ["--source", source]
        if tcp:
            args.append("--tcp")
        if ecs:
            args += ["--ecs", ecs]
        out = self.client(*args, check=True, timeout=timeout + 10)
        return json.loads(out.stdout)

    def spawn(self, namespace, *args):
        p = subprocess.Popen(["ip", "netns", "exec", namespace, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        self.background.append(p)
        return p

    def nft_tables(self):
        return self.exec(self.rtr, "nft", "list", "tables").stdout

    def ip_rules(self, family="-4"):
        return run("ip", family, "-n", self.rtr, "rule", "show").stdout


class Relay:
    """A tproxy-relay process running in the lab's router namespace."""

    def __init__(self, lab, config_text, name="relay", wrapper=(), env=None):
        self.lab = lab
        self.wrapper = list(wrapper)
        self.env = env
        self.config = lab.state / f"{name}.yaml"
        self.config.write_text(config_text)
        self.log = lab.state / f"{name}.log"
        self.process = None

    def start(self, expect_ready=True, timeout=15):
        self.logfile = open(self.log, "w")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.rtr, *self.wrapper, BINARY, "run", "--config", str(self.config)],
            stdout=self.logfile, stderr=subprocess.STDOUT, env={**os.environ, **self.env} if self.env else None)
        if not expect_ready:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if "relaying DNS" in text:
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"relay exited ({self.process.returncode}):\n{text}")
            time.sleep(0.05)
        raise AssertionError(f"relay did not start:\n{self.log.read_text()}")

    def wait(self, timeout=10):
        return self.process.wait(timeout=timeout)

    def output(self):
        return self.log.read_text()

    def counters(self):
        """Asks the relay for its counters (SIGUSR1) and parses the line it logs."""
        before = self.output().count("counters:")
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            text = self.output()
            if text.count("counters:") > before:
                line = [l for l in text.splitlines() if "counters:" in l][-1]
                return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.split("counters:", 1)[1])}
            time.sleep(0.05)
        raise AssertionError("no counters line after SIGUSR1:\n" + self.output())

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.logfile.close()


def config(upstream="mode: original\n  timeout: 1s", extra="", interfaces="[lan0]"):
    return f"""
intercept:
  interfaces: {interfaces}
listen:
  address: 127.0.0.1
  address6: "::1"
  dns_port: 15353
workers: 2
upstream:
  {upstream}
{extra}
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "hostile: hostile input, floods and faults (issue 13); run alone with -m hostile")


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root (network namespaces, nftables)")
    lab = Lab()
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        assert not Path(f"/run/netns/{lab.rtr}").exists(), "lab namespaces left behind"


@pytest.fixture
def relay_factory(lab):
    relays = []

    def make(config_text=None, name="relay", start=True, expect_ready=True, wrapper=(), env=None):
        relay = Relay(lab, config_text or config(), name=name, wrapper=wrapper, env=env)
        relays.append(relay)
        if start:
            relay.start(expect_ready=expect_ready)
        return relay

    yield make
    for relay in relays:
        relay.stop()


@pytest.fixture
def relay(relay_factory):
    return relay_factory()


def kill_9_and_expect_direct_dns(lab, relay):
    """kill -9 the relay: its nft table must be gone within 1 s, and a query from the client to
    10.53.2.53 answered directly by that server (fail-open)."""
    relay.process.send_signal(signal.SIGKILL)
    relay.process.wait()
    started = time.monotonic()
    while "tproxy_relay" in lab.nft_tables():
        assert time.monotonic() - started < 1.0, "nft table still there 1 s after kill -9"
        time.sleep(0.02)
    out = lab.client("kdig", "+time=2", "+retry=0", "@10.53.2.53", "www.lab.test", "A", check=True).stdout
    assert "10.53.2.80" in out and "From 10.53.2.53@53(UDP)" in out


def wait_for(predicate, timeout=8.0, interval=0.1):
    """The predicate's first truthy value within `timeout` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class Ptrace:
    """Stops one thread of a process (PTRACE_SEIZE + PTRACE_INTERRUPT) and lets it go: the rest
    of the process runs on, as when a worker is stuck in a loop."""
    SEIZE, INTERRUPT, DETACH = 0x4206, 0x4207, 17

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

    def call(self, request, tid):
        if self.libc.ptrace(request, tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), f"ptrace({request:#x}, {tid})")

    def stop(self, tid):
        self.call(self.SEIZE, tid)
        self.call(self.INTERRUPT, tid)
        os.waitpid(tid, os.__dict__.get("__WALL", 0x40000000))

    def resume(self, tid):
        self.call(self.DETACH, tid)


def thread_id(pid, name):
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == name:
            return int(task.name)
    raise AssertionError(f"no thread {name} in {pid}")
