"""bench/lab/residence.py: the time each query spent in rtr, from a capture of lan0. Built
pcaps with known timestamps: pairs, reuse of a (port, id), answers without a query, frames
that are not the lab's DNS, a cut-short file, and a file that is not a pcap."""
import struct
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "lab" / "residence.py"


def frame(query: bool, port: int, dns_id: int, proto: int = 17) -> bytes:
    udp = struct.pack("!HHHH", port if query else 53, 53 if query else port, 8 + 12, 0) + struct.pack("!H", dns_id) + bytes(10)
    ip = bytes([0x45, 0]) + struct.pack("!H", 20 + len(udp)) + bytes(4) + bytes([64, proto]) + bytes(2) + bytes([10, 53, 1, 2, 10, 53, 2, 53])
    return bytes(12) + b"\x08\x00" + ip + udp


def pcap(path: Path, records, nano: bool = True, cut: int = 0) -> Path:
    data = struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 96, 1)
    for stamp_ns, payload in records:
        frac = stamp_ns % 1_000_000_000 if nano else stamp_ns % 1_000_000_000 // 1000
        data += struct.pack("<IIII", stamp_ns // 1_000_000_000, frac, len(payload), len(payload)) + payload
    path.write_bytes(data[:len(data) - cut] if cut else data)
    return path


def run(path: Path) -> dict:
    out = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, check=True).stdout
    return dict(item.split("=") for item in out.split())


def test_pairs_by_port_and_id_in_arrival_order(tmp_path):
    t = 1_000_000_000
    records = [
        (t, frame(True, 4000, 7)),
        (t + 10_000, frame(True, 4001, 7)),
        (t + 50_000, frame(False, 4001, 7)),   # 40 µs
        (t + 100_000, frame(False, 4000, 7)),  # 100 µs
        (t + 200_000, frame(True, 4000, 7)),   # the same key again, later
        (t + 3_200_000, frame(False, 4000, 7)),  # 3 ms
        (t + 3_300_000, frame(True, 4002, 9)),  # never answered
    ]
    r = run(pcap(tmp_path / "a.pcap", records))
    assert r["res_pairs"] == "3" and r["res_unanswered"] == "1"
    assert r["res_p50_us"] == "100.0" and r["res_p999_us"] == "3000.0"


def test_microsecond_captures_are_scaled(tmp_path):
    r = run(pcap(tmp_path / "u.pcap", [(5_000_000_000, frame(True, 1, 1)), (5_000_250_000, frame(False, 1, 1))], nano=False))
    assert r["res_p50_us"] == "250.0"


def test_other_traffic_and_lone_answers_are_skipped(tmp_path):
    t = 2_000_000_000
    records = [
        (t, frame(False, 4000, 1)),              # an answer with no query
        (t + 1, frame(True, 4000, 2, proto=6)),  # TCP
        (t + 2, bytes(12) + b"\x86\xdd" + bytes(60)),  # IPv6
        (t + 3, frame(True, 4000, 3)[:30]),       # cut short
    ]
    r = run(pcap(tmp_path / "o.pcap", records))
    assert r == {"res_pairs": "0", "res_unanswered": "0"}


def test_a_file_cut_inside_a_record_keeps_what_came_before(tmp_path):
    t = 3_000_000_000
    records = [(t, frame(True, 9, 9)), (t + 70_000, frame(False, 9, 9)), (t + 80_000, frame(True, 9, 10))]
    r = run(pcap(tmp_path / "c.pcap", records, cut=10))
    assert r["res_pairs"] == "1" and r["res_p50_us"] == "70.0"


def test_not_a_pcap_is_refused(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    result = subprocess.run([sys.executable, str(SCRIPT), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "not a pcap file" in result.stderr
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert subprocess.run([sys.executable, str(SCRIPT), str(empty)], capture_output=True, text=True).stdout.split() == ["res_pairs=0", "res_unanswered=0"]
