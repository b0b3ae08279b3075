"""DNS over TCP through the relay (RFC 7766), end to end in the lab, with real clients."""
import json
import socket
import struct
import subprocess
import time

import pytest

from conftest import HERE, config

SERVERS = [("10.53.2.53", "A", "10.53.2.80"), ("10.53.3.53", "A", "10.53.2.80"),
           ("fd53:2::53", "AAAA", "fd53:2::80"), ("fd53:3::53", "AAAA", "fd53:2::80")]

TCP_CLIENT = HERE / "tcpclient.py"


def tcp(lab, *args, timeout=30):
    out = lab.client("python3", str(TCP_CLIENT), *args, check=True, timeout=timeout)
    return json.loads(out.stdout)


@pytest.mark.parametrize("tool", ["kdig", "dig"])
@pytest.mark.parametrize("server,rdtype,expected", SERVERS)
def test_tcp_answers_come_from_the_address_asked(lab, relay, tool, server, rdtype, expected):
    before = relay.counters()
    args = [tool, "+tcp", "+time=2", f"@{server}", "www.lab.test", rdtype]
    out = lab.client(*args, check=True).stdout
    assert expected in out, out
    if tool == "kdig":
        assert f"From {server}@53(TCP)" in out, out
    else:
        assert f"SERVER: {server}#53({server}) (TCP)" in out, out
    after = relay.counters()
    assert after["tcp_accepted"] - before["tcp_accepted"] == 1
    assert after["tcp_queries"] - before["tcp_queries"] == 1


@pytest.mark.parametrize("server", ["10.53.2.53", "fd53:3::53"])
def test_connection_peer_is_the_address_asked(lab, relay, server):
    result = tcp(lab, "pipeline", server, "--count", "1")
    assert result["peer"] == [server, 53], result
    assert result["answered"] == 1


def test_small_udp_client_gets_tc_and_its_tcp_retry_gets_everything(lab, relay):
    before = relay.counters()
    out = lab.client("dig", "+bufsize=512", "+time=3", "@10.53.2.53", "big.lab.test", "TXT", check=True).stdout
    assert "Truncated, retrying in TCP mode" in out, out
    assert "ANSWER: 12" in out and "(TCP)" in out, out
    after = relay.counters()
    assert after["truncated_for_client"] - before["truncated_for_client"] == 1
    # The upstream (knotd, udp-max-payload 1232) truncated too: the relay asked it again over TCP.
    assert after["tcp_retry"] - before["tcp_retry"] == 1


def test_truncated_answer_is_well_formed(lab, relay):
    result = lab.query("10.53.2.53", "big.lab.test", "TXT", edns=True)  # dnspython's EDNS default: 1232
    assert result["from"] == "10.53.2.53"
    assert result["question"] == ["big.lab.test. IN TXT"]
    assert result["answers"] == [] and result["edns"], result


def test_big_udp_client_gets_the_full_answer_over_udp(lab, relay):
    """The upstream truncates at 1232 bytes; the relay fetches the answer over TCP and, since it
    fits the client's 4096-byte buffer, returns it whole over UDP."""
    before = relay.counters()
    out = lab.client("dig", "+bufsize=4096", "+ignore", "+time=3", "@10.53.2.53", "big.lab.test", "TXT", check=True).stdout
    assert "ANSWER: 12" in out and "(UDP)" in out and " tc" not in out.split("flags:")[1].split(";")[0], out
    after = relay.counters()
    assert after["tcp_retry"] - before["tcp_retry"] == 1
    assert after["truncated_for_client"] == before["truncated_for_client"]


def test_100_pipelined_queries_on_one_connection(lab, relay):
    before = relay.counters()
    result = tcp(lab, "pipeline", "10.53.2.53", "--count", "100")
    assert result["answered"] == 100, result
    assert result["mismatched"] == 0
    after = relay.counters()
    assert after["tcp_accepted"] - before["tcp_accepted"] == 1
    assert after["tcp_queries"] - before["tcp_queries"] == 100


def limited_relay(relay_factory, **tcp_keys):
    extra = "tcp:\n" + "".join(f"  {k}: {v}\n" for k, v in tcp_keys.items())
    return relay_factory(config(extra=extra))


def test_slowloris_is_cut_off_and_others_are_served(lab, relay_factory):
    relay = limited_relay(relay_factory, idle_timeout="1s", max_lifetime="30s")
    slow = subprocess.Popen(["ip", "netns", "exec", lab.cli, "python3", str(TCP_CLIENT), "trickle", "10.53.2.53"],
                            stdout=subprocess.PIPE, text=True)
    lab.background.append(slow)
    time.sleep(0.3)
    assert lab.query("10.53.3.53")["from"] == "10.53.3.53"  # others keep being answered
    result = json.loads(slow.communicate(timeout=10)[0])
    assert result["closed_by_relay"], result
    assert 0.9 <= result["seconds"] <= 2.5, result
    assert relay.counters()["tcp_closed_idle"] >= 1


def test_connection_over_the_limit_is_refused_others_keep_working(lab, relay_factory):
    relay = limited_relay(relay_factory, max_connections_per_client=3)
    result = tcp(lab, "limit", "10.53.2.53", "--hold", "3")
    assert result["extra_closed"], result
    assert result["held_answered"] == 3, result
    assert relay.counters()["tcp_refused"] == 1


def test_client_that_never_reads_is_dropped_without_stalling_others(lab, relay_factory):
    relay = limited_relay(relay_factory, max_pending_output=100000)
    reader = subprocess.Popen(["ip", "netns", "exec", lab.cli, "python3", str(TCP_CLIENT), "noread", "10.53.2.53", "--count", "3000"],
                              stdout=subprocess.PIPE, text=True)
    lab.background.append(reader)
    time.sleep(0.5)
    for server in ("10.53.2.53", "10.53.3.53"):
        out = lab.client("kdig", "+tcp", "+time=2", f"@{server}", "www.lab.test", check=True).stdout
        assert "10.53.2.80" in out
    result = json.loads(reader.communicate(timeout=30)[0])
    assert result["closed_by_relay"], result
    assert relay.counters()["tcp_slow_readers"] == 1


@pytest.mark.parametrize("kind", ["short-length", "garbage-message"])
def test_malformed_stream_closes_only_that_connection(lab, relay, kind):
    before = relay.counters()
    result = tcp(lab, "malformed", "10.53.2.53", "--kind", kind)
    assert result["closed_by_relay"], result
    if kind == "garbage-message":
        assert result["rcode"] == 1, result  # FORMERR first, then the close
    assert relay.counters()["tcp_malformed"] - before["tcp_malformed"] == 1
    assert tcp(lab, "pipeline", "10.53.2.53", "--count", "3")["answered"] == 3


def test_upstream_closing_mid_message_gives_servfail(lab, relay):
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "midclose", "10.53.4.53")
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    before = relay.counters()
    out = lab.client("kdig", "+tcp", "+time=3", "@10.53.4.53", "mid.lab.test", check=True).stdout
    assert "status: SERVFAIL" in out and "From 10.53.4.53@53(TCP)" in out, out
    # A UDP client: the fake truncates, the relay retries over TCP, that fails: SERVFAIL over UDP.
    result = lab.query("10.53.4.53", "mid2.lab.test", "A")
    assert result["rcode"] == "SERVFAIL" and result["from"] == "10.53.4.53", result
    after = relay.counters()
    assert after["upstream_tcp_fail"] - before["upstream_tcp_fail"] == 2
    assert after["servfail"] - before["servfail"] == 2
    assert lab.query("10.53.2.53")["rcode"] == "NOERROR"
    fake.kill()


def test_max_queries_per_connection_closes_after_answering(lab, relay_factory):
    limited_relay(relay_factory, max_queries_per_connection=5)
    result = tcp(lab, "pipeline", "10.53.2.53", "--count", "8")
    # The first five are answered, then the relay closes; the rest were never read.
    assert result["answered"] == 5 and result["mismatched"] == 0, result
