"""Issue 18 (in part): running as a service. systemd's notify protocol, played by a Python unix
datagram socket as NOTIFY_SOCKET: READY=1 once the nft table exists, RELOADING=1 then READY=1
around SIGHUP, STOPPING=1 on SIGTERM, WATCHDOG=1 pings at half WATCHDOG_USEC. And the relay
without root: with CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE as ambient capabilities
of an unprivileged user it relays UDP and TCP; without any one of them it refuses, naming it."""
import json
import os
import select
import signal
import socket
import time

import pytest

from conftest import Ptrace, config, thread_id, wait_for

CAPS = ["net_admin", "net_raw", "net_bind_service"]


class NotifySocket:
    """What systemd listens on: one datagram per notification."""

    def __init__(self, path):
        self.address = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # "@name" is an abstract socket, as systemd writes it in NOTIFY_SOCKET.
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)

    def next(self, timeout=10.0):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()
        if not self.address.startswith("@") and os.path.exists(self.address):
            os.unlink(self.address)


class AbstractNotifySocket:
    """An abstract socket belongs to a network namespace: this one listens in the router's,
    where the relay runs, and passes each datagram on as a JSON line."""

    SCRIPT = ("import json, socket, sys\n"
              "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
              "s.bind('\\0' + sys.argv[1])\n"
              "print(json.dumps('bound'), flush=True)\n"
              "while True:\n"
              "    print(json.dumps(s.recv(4096).decode()), flush=True)\n")

    def __init__(self, lab, name):
        self.address = "@" + name
        self.process = lab.spawn(lab.rtr, "python3", "-c", self.SCRIPT, name)
        self.pending = b""
        assert self.next() == "bound"

    def next(self, timeout=10.0):
        """The next line, read from the pipe itself (a buffered readline could hide one from select)."""
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return json.loads(line)

    def close(self):
        self.process.kill()
        self.process.wait()


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_notify_ready_reloading_stopping(lab, relay_factory, kind):
    if kind == "path":
        notify = NotifySocket(str(lab.state / "notify-path.sock"))
    else:
        notify = AbstractNotifySocket(lab, f"tproxy-relay-test-{lab.suffix}")
    address = notify.address
    try:
        relay = relay_factory(name=f"notify-{kind}", expect_ready=False, env={"NOTIFY_SOCKET": address})
        first = notify.next()
        assert first is not None and "READY=1" in first.splitlines(), (first, relay.output()[-2000:])
        # READY is sent after the table is installed: it must be there the moment READY arrives.
        assert "tproxy_relay" in lab.nft_tables()
        assert lab.query("10.53.2.53")["from"] == "10.53.2.53"
        relay.process.send_signal(signal.SIGHUP)
        reloading = notify.next()
        assert reloading is not None and "RELOADING=1" in reloading.splitlines(), reloading
        assert any(l.startswith("MONOTONIC_USEC=") for l in reloading.splitlines())
        again = notify.next()
        assert again is not None and "READY=1" in again.splitlines(), again
        relay.process.send_signal(signal.SIGTERM)
        stopping = notify.next()
        assert stopping == "STOPPING=1", stopping
        assert relay.process.wait(timeout=10) == 0
    finally:
        notify.close()


def test_watchdog_pings_at_half_the_interval(lab, relay_factory):
    address = str(lab.state / "notify-watchdog.sock")
    notify = NotifySocket(address)
    try:
        relay_factory(name="watchdog", expect_ready=False, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"})
        assert "READY=1" in (notify.next() or "")
        started = time.monotonic()
        pings = 0
        while time.monotonic() - started < 1.5:
            if notify.next(timeout=1.0) == "WATCHDOG=1":
                pings += 1
        assert 4 <= pings <= 9, f"{pings} pings in 1.5 s at a 200 ms period"
    finally:
        notify.close()


def test_watchdog_pings_stop_while_a_worker_is_stuck(lab, relay_factory):
    """A worker held still (ptrace stops that one thread; the rest of the process runs): no ping
    while it is stuck, so systemd's watchdog would restart the relay; pings resume after."""
    address = str(lab.state / "notify-stuck.sock")
    notify = NotifySocket(address)
    tracer, tid = Ptrace(), None
    try:
        relay = relay_factory(name="stuck", expect_ready=False, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"})
        assert "READY=1" in (notify.next() or "")
        assert notify.next(timeout=2.0) == "WATCHDOG=1"
        tid = thread_id(relay.process.pid, "worker-0")
        tracer.stop(tid)
        # Pings already in the socket's queue (sent before the stop) are read first.
        time.sleep(0.7)
        while notify.next(timeout=0.05) is not None:
            pass
        pings = sum(1 for _ in range(3) if notify.next(timeout=0.5) == "WATCHDOG=1")
        assert pings == 0, f"{pings} pings while worker 0 was stuck"
        tracer.resume(tid)
        tid = None
        assert notify.next(timeout=2.0) == "WATCHDOG=1", "pings resume once the worker turns again"
    finally:
        if tid is not None:
            tracer.resume(tid)
        notify.close()


def setpriv(caps):
    listed = ",".join(f"+{c}" for c in caps) or "-all"
    return ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", f"--inh-caps={listed}", f"--ambient-caps={listed}")


def test_relays_without_root_with_three_capabilities(lab, relay_factory):
    relay = relay_factory(config(), name="unprivileged", wrapper=setpriv(CAPS))
    status = open(f"/proc/{relay.process.pid}/status").read()
    assert "\nUid:\t65534" in status, "the relay runs as nobody"
    udp = lab.query("10.53.3.53", "www.lab.test", "A")
    assert udp["from"] == "10.53.3.53" and udp["answers"] == ["10.53.2.80"], udp
    tcp = lab.query("10.53.3.53", "www.lab.test", "A", tcp=True)
    assert tcp["answers"] == ["10.53.2.80"], tcp
    v6 = lab.query("fd53:3::53", "www.lab.test", "AAAA")
    assert v6["from"] == "fd53:3::53" and v6["answers"] == ["fd53:2::80"], v6
    assert relay.counters()["reply_fail"] == 0


@pytest.mark.parametrize("missing", CAPS)
def test_without_one_capability_it_refuses_naming_it(lab, relay_factory, missing):
    relay = relay_factory(config(), name=f"no-{missing}", wrapper=setpriv([c for c in CAPS if c != missing]), expect_ready=False)
    assert relay.wait(timeout=10) == 1
    out = relay.output()
    assert f"lacks CAP_{missing.upper()}" in out, out
    assert "tproxy_relay" not in lab.nft_tables(), "nothing is installed"


def test_the_unit_file_verifies(tmp_path):
    """packaging/tproxy-relay.service passes `systemd-analyze verify` (its ExecStart pointed at
    this build; man pages are the package's, not checked here)."""
    import shutil
    import subprocess
    from conftest import BINARY, ROOT
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (ROOT / "packaging" / "tproxy-relay.service").read_text().replace("/usr/sbin/tproxy-relay", BINARY)
    assert "Type=notify" in unit and "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE" in unit
    path = tmp_path / "tproxy-relay.service"
    path.write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
