"""Issue 18: the metrics endpoint. A real Prometheus (Debian's), started in the router namespace
with a scrape config pointing at the relay, scrapes it; its HTTP API then shows up == 1 and the
answered counter equal to the queries the test sent. `promtool check metrics` passes on the
exposition. /healthz says 200 while every worker turns and 503 while one is stopped (a real
stop: ptrace holds that one thread). Hostile peers from the LAN — a 1 MB header, a slowloris,
500 connections — leave DNS answering and /metrics serving."""
import json
import shutil
import signal
import subprocess
import time
import urllib.parse

import pytest

from conftest import HERE, Ptrace, config, thread_id, wait_for

METRICS = "10.53.1.1:9153"
PROMETHEUS_PORT = 19090


def metrics_config(extra=""):
    return config(upstream="mode: servers\n  servers: [10.53.2.53]\n  timeout: 1s",
                  extra=f"metrics:\n  listen: [\"{METRICS}\", \"127.0.0.1:9153\"]\n{extra}")


def http(lab, namespace, path, address=METRICS):
    host, port = address.rsplit(":", 1)
    out = lab.exec(namespace, "python3", str(HERE / "httppeer.py"), "get", host, port, path, check=True)
    return json.loads(out.stdout)


def sample(text, line_prefix):
    """The value of the first sample line that starts with `line_prefix` (name and labels)."""
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def dig(lab, name, server="10.53.2.53"):
    return lab.client("kdig", "+time=2", "+retry=0", f"@{server}", name, "A").stdout


@pytest.fixture
def prometheus(lab, tmp_path):
    if not shutil.which("prometheus"):
        pytest.fail("prometheus is not installed: scripts/setup.sh installs it")
    tmp_path.chmod(0o755)
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: tproxy-relay
    static_configs:
      - targets: ["{METRICS}"]
""")
    process = lab.spawn(lab.rtr, "prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                        f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}")
    yield process
    process.terminate()
    process.wait(timeout=10)


def prometheus_query(lab, expression):
    path = "/api/v1/query?query=" + urllib.parse.quote(expression)
    try:
        reply = http(lab, lab.rtr, path, address=f"127.0.0.1:{PROMETHEUS_PORT}")
    except Exception:
        return None
    if reply["status"] != 200:
        return None
    result = json.loads(reply["body"])["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_relay(lab, relay_factory, prometheus):
    relay = relay_factory(metrics_config())
    assert "metrics: http://10.53.1.1:9153" in relay.output()
    if not wait_for(lambda: prometheus_query(lab, 'up{job="tproxy-relay"}') == 1, timeout=30):
        prometheus.terminate()
        raise AssertionError("Prometheus never saw the relay up:\n" + prometheus.stdout.read()[-3000:])
    sent = 12
    for i in range(sent):
        assert "status: NOERROR" in dig(lab, "www.lab.test" if i == 0 else f"n{i}.wild.lab.test")
    # Every query was forwarded (distinct names) and answered once.
    assert wait_for(lambda: prometheus_query(lab, "tproxy_relay_answered_total") == sent, timeout=15), \
        f"answered: {prometheus_query(lab, 'tproxy_relay_answered_total')}"
    assert prometheus_query(lab, 'sum(tproxy_relay_answers_total{action="allowed",proto="udp",rcode="NOERROR"})') == sent
    assert prometheus_query(lab, 'tproxy_relay_upstream_server_queries_total{upstream="10.53.2.53:53"}') == sent
    assert prometheus_query(lab, 'tproxy_relay_answer_duration_seconds_count{path="forwarded"}') == sent
    assert prometheus_query(lab, "tproxy_relay_interception_installed") == 1


def test_promtool_accepts_the_exposition(lab, relay_factory, tmp_path):
    lists = tmp_path / "block.txt"
    lists.write_text("||ads.lab.test^\n")
    tmp_path.chmod(0o755)
    relay_factory(metrics_config(f"filters:\n  lists: [\"{lists}\"]\nquerylog:\n  path: {tmp_path / 'q.jsonl'}\n"))
    assert "NXDOMAIN" in dig(lab, "ads.lab.test")
    assert "NOERROR" in dig(lab, "www.lab.test")
    page = http(lab, lab.cli, "/metrics")
    assert page["status"] == 200
    assert page["headers"]["Content-Type"].startswith("text/plain; version=0.0.4")
    text = page["body"]
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sample(text, 'tproxy_relay_answers_total{action="blocked",proto="udp",rcode="NXDOMAIN"}') == 1
    assert sample(text, "tproxy_relay_blocked_total") == 1
    assert sample(text, f'tproxy_relay_list_rules{{list="{lists}"}}') == 1
    assert sample(text, f'tproxy_relay_list_load_success{{list="{lists}"}}') == 1
    assert sample(text, "tproxy_relay_querylog_written_total") is not None
    assert sample(text, "tproxy_relay_workers") == 2


def test_a_failed_list_reload_shows_in_the_metrics(lab, relay_factory, tmp_path):
    lists = tmp_path / "block.txt"
    lists.write_text("||ads.lab.test^\n||more.lab.test^\n")
    tmp_path.chmod(0o755)
    relay = relay_factory(metrics_config(f"filters:\n  lists: [\"{lists}\"]\n  watch: false\n"))
    text = http(lab, lab.cli, "/metrics")["body"]
    loaded_at = sample(text, f'tproxy_relay_list_last_success_timestamp_seconds{{list="{lists}"}}')
    assert loaded_at and abs(loaded_at - time.time()) < 60
    lists.write_bytes(b"\0 not a list\n")
    relay.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed" in relay.output())
    text = http(lab, lab.cli, "/metrics")["body"]
    assert sample(text, f'tproxy_relay_list_load_success{{list="{lists}"}}') == 0
    assert sample(text, f'tproxy_relay_list_rules{{list="{lists}"}}') == 2
    assert sample(text, f'tproxy_relay_list_last_success_timestamp_seconds{{list="{lists}"}}') == loaded_at
    assert "NXDOMAIN" in dig(lab, "more.lab.test"), "the previous rules stay in service"


def test_healthz_is_503_while_a_worker_is_stuck(lab, relay_factory):
    relay = relay_factory(metrics_config())
    health = http(lab, lab.cli, "/healthz")
    assert (health["status"], health["body"]) == (200, "ok\n")
    tid = thread_id(relay.process.pid, "worker-1")
    tracer = Ptrace()
    tracer.stop(tid)
    try:
        health = wait_for(lambda: (h := http(lab, lab.cli, "/healthz"))["status"] == 503 and h, timeout=5)
        assert health and health["body"] == "worker 1 stopped turning\n", health
        # /metrics still serves, saying the same; it waits for the stuck worker at most 50 ms.
        started = time.monotonic()
        page = http(lab, lab.cli, "/metrics")
        assert page["status"] == 200 and time.monotonic() - started < 1.0
        assert sample(page["body"], "tproxy_relay_workers_alive") == 0
    finally:
        tracer.resume(tid)
    assert wait_for(lambda: http(lab, lab.cli, "/healthz")["status"] == 200, timeout=5)


def test_hostile_http_peers_leave_dns_and_metrics_working(lab, relay_factory):
    relay_factory(metrics_config())
    host, port = METRICS.split(":")
    peer = ["python3", str(HERE / "httppeer.py")]
    big = json.loads(lab.client(*peer, "bigheader", host, port, str(1 << 20), check=True, timeout=30).stdout)
    assert big["reply"] == "" or big["reply"].startswith("HTTP/1.1 431"), big
    # 500 idle connections at once, while DNS is asked and /metrics is scraped.
    flood = lab.spawn(lab.cli, *peer, "flood", host, port, "500", "3")
    time.sleep(1)
    assert "status: NOERROR" in dig(lab, "www.lab.test")
    assert http(lab, lab.cli, "/metrics")["status"] == 200, "a scraper gets through a flood of idle connections"
    flood.wait(timeout=30)
    assert json.loads(flood.stdout.read())["connected"] == 500
    # A slowloris: 20 connections that each send a byte every 250 ms and never end their head;
    # each is closed at its 5 s deadline.
    loris = json.loads(lab.client(*peer, "slowloris", host, port, "20", "9", check=True, timeout=40).stdout)
    assert loris["closed_by_server"] == 20, loris
    assert "status: NOERROR" in dig(lab, "www.lab.test")
    page = http(lab, lab.cli, "/metrics")
    assert page["status"] == 200 and "tproxy_relay_received_total" in page["body"]


def test_a_taken_metrics_port_stops_start_up_before_anything_is_installed(lab, relay_factory):
    holder = lab.spawn(lab.rtr, "python3", "-c",
                       "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('10.53.1.1', 9153)); s.listen(); print('bound', flush=True); time.sleep(60)")
    assert holder.stdout.readline().strip() == "bound"
    try:
        relay = relay_factory(metrics_config(), expect_ready=False)
        assert relay.wait(timeout=15) != 0
        assert "metrics: cannot listen on 10.53.1.1:9153" in relay.output()
        assert "tproxy_relay" not in lab.nft_tables()
    finally:
        holder.kill()
