"""Issue 19: encrypted DNS and known DoH addresses closed in the relay's own table. From `cli`:
a TCP connect to 10.53.2.53:853 is refused (RST) while a listener there sees nothing; UDP 853
datagrams never arrive; TCP 443 to an address in a `block_addresses` file is refused while
another address works; an edit of the file applies within 2 s; the kernel's counters, read back
by the relay, match the attempts."""
import json
import time

import pytest

from conftest import config, wait_for

LISTENER = """
import json, socket, sys, threading, time
tcp4 = []
got = {"tcp": [], "udp": []}
for port in (443, 853):
    for address in ("10.53.2.53", "10.53.4.53"):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((address, port)); s.listen(64); tcp4.append(s)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.53.2.53", port)); tcp4.append(u)
def accept(s):
    while True:
        c, peer = s.accept(); got["tcp"].append([s.getsockname()[0], s.getsockname()[1]]); c.close()
def receive(u):
    while True:
        data, peer = u.recvfrom(2048); got["udp"].append(u.getsockname()[1])
for s in tcp4:
    threading.Thread(target=accept if s.type == socket.SOCK_STREAM else receive, args=(s,), daemon=True).start()
print(json.dumps("ready"), flush=True)
for line in sys.stdin:
    print(json.dumps(got), flush=True)
"""

PROBE = """
import json, socket, sys
kind, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "tcp":
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((address, port)); print(json.dumps("connected"))
    except ConnectionRefusedError:
        print(json.dumps("refused"))
    except OSError as e:
        print(json.dumps(type(e).__name__))
elif kind == "udp-reply":
    # A connected UDP socket sees an ICMP port unreachable as ECONNREFUSED on the next receive.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.connect((address, port))
    s.send(b"quic probe")
    try:
        s.recv(2048); print(json.dumps("answered"))
    except ConnectionRefusedError:
        print(json.dumps("refused"))
    except socket.timeout:
        print(json.dumps("timeout"))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(5): s.sendto(b"doq probe", (address, port))
    print(json.dumps("sent"))
"""


class Listener:
    def __init__(self, lab):
        import subprocess
        self.process = subprocess.Popen(["ip", "netns", "exec", lab.up, "python3", "-c", LISTENER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert json.loads(self.process.stdout.readline()) == "ready"

    def seen(self):
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def listener(lab):
    listener = Listener(lab)
    yield listener
    listener.close()


def probe(lab, kind, address, port):
    return json.loads(lab.client("python3", "-c", PROBE, kind, address, str(port), check=True).stdout)


def test_encrypted_dns_is_closed_and_counted(lab, relay_factory, listener):
    # Without the switch both go through: the listener is real.
    relay = relay_factory(config(), name="no-block")
    assert probe(lab, "tcp", "10.53.2.53", 853) == "connected"
    relay.stop()
    relay = relay_factory(config(extra="bypass:\n  block_encrypted_dns: true\n"), name="block-853")
    before = listener.seen()
    for _ in range(3):
        assert probe(lab, "tcp", "10.53.2.53", 853) == "refused"
    assert probe(lab, "udp", "10.53.2.53", 853) == "sent"
    time.sleep(0.3)
    after = listener.seen()
    assert after["tcp"] == before["tcp"] and after["udp"] == before["udp"], (before, after)
    # HTTPS is not touched by this switch.
    assert probe(lab, "tcp", "10.53.2.53", 443) == "connected"
    counters = relay.counters()
    # Each refused connect is one SYN (no retries after a RST); each datagram one packet.
    assert counters["bypass_encrypted_dns"] == 3 + 5, counters


def test_blocked_addresses_from_a_file_reloaded_within_two_seconds(lab, relay_factory, listener, tmp_path):
    addresses = tmp_path / "doh.txt"
    addresses.write_text("# known DoH servers\n10.53.4.53\nnot-an-address\n2001:db8::/32\n")
    tmp_path.chmod(0o755)
    relay = relay_factory(config(extra=f"bypass:\n  block_addresses: [{addresses}]\n"), name="doh-list")
    assert f"{addresses}:3: rejected: not an address or CIDR: not-an-address" in relay.output()
    assert probe(lab, "tcp", "10.53.4.53", 443) == "refused"
    assert probe(lab, "tcp", "10.53.4.53", 853) == "refused"
    assert probe(lab, "tcp", "10.53.2.53", 443) == "connected"
    # UDP 443 (HTTP/3, DoH over QUIC) to it skips the QUIC capture and is refused with an ICMP
    # port unreachable: the client gives up at once.
    assert probe(lab, "udp-reply", "10.53.4.53", 443) == "refused"
    # The file changes: 10.53.2.53 is blocked too, 10.53.4.53 no longer; applied within 2 s.
    addresses.write_text("10.53.2.0/24\n")
    started = time.monotonic()
    assert wait_for(lambda: probe(lab, "tcp", "10.53.2.53", 443) == "refused", timeout=2.0, interval=0.1)
    print(f"applied after {time.monotonic() - started:.2f} s")
    assert probe(lab, "tcp", "10.53.4.53", 443) == "connected"
    counters = relay.counters()
    assert counters["bypass_blocked_addresses"] >= 3, counters
    # A file that cannot be read keeps the previous addresses.
    addresses.write_bytes(b"\0binary")
    assert wait_for(lambda: "the previous addresses stay blocked" in relay.output(), timeout=3)
    assert probe(lab, "tcp", "10.53.2.53", 443) == "refused"
