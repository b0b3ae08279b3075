"""Local zones end to end: authoritative answers (AA=1) from the address the client asked, CNAME
chains, wildcards, NXDOMAIN and NODATA with the SOA, over UDP and TCP; a broken zone is refused
with file:line while the version in service keeps answering; at start-up it stops the relay."""
import re
import subprocess
import time

from conftest import BINARY, config

ZONE = """$TTL 300
@        IN SOA ns.home.lan. admin.home.lan. ( 1 3600 600 86400 60 )
         IN NS  ns
ns       IN A   10.53.5.1
nas      IN A   10.53.5.10
nas      IN AAAA fd53:5::10
www      IN CNAME web
web      IN CNAME nas
*.dev    IN A   10.53.5.99
a.b.deep IN TXT "leaf"
"""


def zoned(lab, relay_factory, text=ZONE, extra="", ready=True):
    directory = lab.state / f"zones-{time.monotonic_ns()}"
    directory.mkdir()
    (directory / "home.lan.zone").write_text(text)
    relay = relay_factory(config(extra=f"zones: {directory}\n{extra}"), expect_ready=ready)
    return relay, directory


def test_zone_answers_are_authoritative_and_come_from_the_address_asked(lab, relay_factory):
    relay, _ = zoned(lab, relay_factory)
    a = lab.query("10.53.2.53", "nas.home.lan", "A")
    assert a["from"] == "10.53.2.53" and a["aa"] and a["answers"] == ["10.53.5.10"] and a["ttls"] == [300], a
    aaaa = lab.query("fd53:3::53", "NAS.home.lan", "AAAA")
    assert aaaa["from"] == "fd53:3::53" and aaaa["answers"] == ["fd53:5::10"], aaaa
    assert aaaa["question"] == ["NAS.home.lan. IN AAAA"], aaaa
    chain = lab.query("10.53.2.53", "www.home.lan", "A")
    assert chain["answers"] == ["web.home.lan.", "nas.home.lan.", "10.53.5.10"], chain
    wild = lab.query("10.53.2.53", "anything.dev.home.lan", "A")
    assert wild["answers"] == ["10.53.5.99"] and wild["aa"], wild
    nx = lab.query("10.53.2.53", "missing.home.lan", "A")
    assert nx["rcode"] == "NXDOMAIN" and nx["authority"] == ["home.lan. 60 SOA"] and nx["aa"], nx
    nodata = lab.query("10.53.2.53", "nas.home.lan", "TXT")
    assert nodata["rcode"] == "NOERROR" and nodata["answers"] == [] and nodata["authority"] == ["home.lan. 60 SOA"], nodata
    ent = lab.query("10.53.2.53", "b.deep.home.lan", "A")
    assert ent["rcode"] == "NOERROR" and ent["answers"] == [], ent
    out = lab.client("kdig", "+tcp", "+time=2", "@10.53.2.53", "www.home.lan", "A", check=True).stdout
    assert "Flags: qr aa rd ra" in out and "10.53.5.10" in out and "From 10.53.2.53@53(TCP)" in out, out
    # names outside the zone still go upstream
    assert lab.query("10.53.2.53", "www.lab.test")["answers"] == ["10.53.2.80"]
    assert relay.counters()["local"] == 8


def test_a_broken_zone_keeps_the_version_in_service(lab, relay_factory):
    relay, directory = zoned(lab, relay_factory)
    assert lab.query("10.53.2.53", "nas.home.lan")["answers"] == ["10.53.5.10"]
    zone = directory / "home.lan.zone"
    zone.write_text(ZONE.replace("nas      IN A   10.53.5.10", "nas      IN A   10.53.5.300").replace("ns       IN A   10.53.5.1", "ns IN A 10.53.5.2"))
    deadline = time.monotonic() + 5
    while "zone reload:" not in relay.output():
        assert time.monotonic() < deadline, relay.output()
        time.sleep(0.05)
    assert f"{zone}:5:" in relay.output(), relay.output()
    assert lab.query("10.53.2.53", "nas.home.lan")["answers"] == ["10.53.5.10"]
    assert lab.query("10.53.2.53", "ns.home.lan")["answers"] == ["10.53.5.1"]
    # fixed: the new version answers
    zone.write_text(ZONE.replace("10.53.5.10", "10.53.5.11"))
    deadline = time.monotonic() + 5
    while lab.query("10.53.2.53", "nas.home.lan")["answers"] != ["10.53.5.11"]:
        assert time.monotonic() < deadline, relay.output()
        time.sleep(0.1)


def test_a_broken_zone_stops_start_up_with_file_and_line(lab, relay_factory):
    relay, directory = zoned(lab, relay_factory, text=ZONE + "bad IN A not-an-address\n", ready=False)
    assert relay.wait() == 1
    assert f"{directory}/home.lan.zone:11:" in relay.output(), relay.output()
    assert "tproxy_relay" not in lab.nft_tables()
    out = subprocess.run([BINARY, "check", "--config", str(relay.config)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 1 and f"home.lan.zone:11:" in out.stdout, out.stdout


def test_zones_come_before_the_rules_and_bypass_the_cache(lab, relay_factory):
    listfile = lab.state / "zone-block.txt"
    listfile.write_text("||home.lan^\n||ads.lab.test^\n")
    relay, directory = zoned(lab, relay_factory, text=ZONE + "printer IN A 10.53.5.20\n",
                             extra=f"filters:\n  lists: [{listfile}]\n")
    # the LAN's own zone answers although a list blocks the whole domain (docs/ZONES.md)
    assert lab.query("10.53.2.53", "printer.home.lan")["answers"] == ["10.53.5.20"]
    assert lab.query("10.53.2.53", "ads.lab.test")["rcode"] == "NXDOMAIN"
    for _ in range(3):
        assert lab.query("10.53.2.53", "nas.home.lan")["answers"] == ["10.53.5.10"]
    counters = relay.counters()
    assert counters["cache_hits"] == 0 and counters["local"] == 4 and counters["blocked"] == 1, counters


def test_a_rewrite_to_a_name_in_a_local_zone_is_answered_locally(lab, relay_factory):
    listfile = lab.state / "alias-rules.txt"
    listfile.write_text("||storage.lab.test^$dnsrewrite=nas.home.lan\n||elsewhere.lab.test^$dnsrewrite=www.lab.test\n")
    relay, _ = zoned(lab, relay_factory, extra=f"filters:\n  lists: [{listfile}]\n  ttl: 20\n")
    local = lab.query("10.53.2.53", "storage.lab.test", "A")
    assert local["answers"] == ["nas.home.lan.", "10.53.5.10"] and local["ttls"] == [20, 300] and not local["aa"], local
    upstream = lab.query("10.53.2.53", "elsewhere.lab.test", "A")
    assert upstream["answers"] == ["www.lab.test.", "10.53.2.80"], upstream
    counters = relay.counters()
    assert counters["local"] == 1 and counters["aliased"] == 1, counters


def test_a_zone_wins_over_a_list_and_explain_says_so(lab, relay_factory):
    """Issue 14: a list blocking the zone's own names does not block them (zones come first), over
    UDP and TCP, and `explain` tells the same story: the zone answers, the list's rule matched too."""
    listfile = lab.state / f"block-home-{time.monotonic_ns()}.txt"
    listfile.write_text("||home.lan^\n||ads.lab.test^\n")
    relay, _ = zoned(lab, relay_factory, extra=f"filters:\n  lists: [{listfile}]\n")
    udp = lab.query("10.53.2.53", "nas.home.lan", "A")
    assert udp["rcode"] == "NOERROR" and udp["aa"] and udp["answers"] == ["10.53.5.10"], udp
    out = lab.client("kdig", "+tcp", "+time=2", "@10.53.2.53", "nas.home.lan", "A", check=True).stdout
    assert "Flags: qr aa rd ra" in out and "10.53.5.10" in out and "(TCP)" in out, out
    # the list still blocks what is outside the zone
    assert lab.query("10.53.2.53", "ads.lab.test")["rcode"] == "NXDOMAIN"
    counters = relay.counters()
    assert counters["local"] == 2 and counters["blocked"] == 1, counters
    explained = subprocess.run([BINARY, "explain", "--config", str(relay.config), "nas.home.lan"],
                               capture_output=True, text=True, timeout=20).stdout
    assert "nas.home.lan A: answered from a local zone" in explained, explained
    assert "zones: local zone home.lan answers" in explained, explained
    assert f"also matched {listfile}:1: ||home.lan^" in explained and "decided by" not in explained, explained
    blocked = subprocess.run([BINARY, "explain", "--config", str(relay.config), "ads.lab.test"],
                             capture_output=True, text=True, timeout=20).stdout
    assert "ads.lab.test A: blocked" in blocked and f"decided by {listfile}:2: ||ads.lab.test^" in blocked, blocked
