"""Issue 23, part 1: block lists subscribed by URL. An HTTPS server in the `up` namespace (its own
CA, given to the relay with filters.ca_file) serves a list; the relay downloads it, blocks its names,
refreshes it with conditional requests (304 when unchanged), keeps the copy in service through a
500, a truncated body, a 100 MB body, binary garbage and an HTML page (each reported), starts from
its cached copy when the server is down, and its download is not captured by its own table."""
import subprocess
import time
import urllib.request

import pytest

from conftest import BINARY, HERE, config, run, wait_for

SERVER = "10.53.4.53"
PORT = 8443
URL = f"https://{SERVER}:{PORT}/list.txt"


@pytest.fixture(scope="module")
def list_server(lab):
    directory = lab.state / "list-server"
    directory.mkdir(exist_ok=True)
    lab.exec(lab.up, "python3", str(HERE / "list_server.py"), "cert", str(directory), SERVER, check=True)
    (directory / "list.txt").write_text("||first.wild.lab.test^\n")
    process = lab.spawn(lab.up, "python3", str(HERE / "list_server.py"), "serve", str(directory), SERVER, str(PORT), "--tls")
    assert process.stdout.readline().strip() == "serving"
    yield directory
    process.kill()
    process.wait()


def url_config(lab, server, name, refresh="2s", extra=""):
    cache = lab.state / f"{name}-cache"
    log = lab.state / f"{name}-queries.jsonl"
    text = config(extra=f"""filters:
  lists: [{URL}]
  refresh: {refresh}
  ca_file: {server}/ca.pem
  cache_dir: {cache}
querylog:
  path: {log}
{extra}""")
    return text, cache


def status(lab, name):
    out = lab.client("kdig", "+time=2", "+retry=0", "@10.53.2.53", name, "A", check=True).stdout
    return "NXDOMAIN" if "status: NXDOMAIN" in out else "NOERROR" if "status: NOERROR" in out else out


def requests(server):
    path = server / "requests.log"
    return path.read_text().splitlines() if path.exists() else []


def set_mode(server, mode):
    (server / "mode").write_text(mode + "\n")


def test_a_url_list_blocks_and_refreshes_with_conditional_requests(lab, relay_factory, list_server):
    set_mode(list_server, "ok")
    (list_server / "list.txt").write_text("||first.wild.lab.test^\n")
    text, cache = url_config(lab, list_server, "url")
    relay = relay_factory(text, name="url")
    assert wait_for(lambda: status(lab, "first.wild.lab.test") == "NXDOMAIN", timeout=10), relay.output()
    assert status(lab, "second.wild.lab.test") == "NOERROR"
    # Unchanged: the next refreshes are conditional and answered 304.
    assert wait_for(lambda: any(" 304 inm=\"" in r for r in requests(list_server)), timeout=10), requests(list_server)
    # Changed: applied at the next refresh, the rule's list in the log is the URL.
    (list_server / "list.txt").write_text("||first.wild.lab.test^\n||second.wild.lab.test^\n")
    assert wait_for(lambda: status(lab, "second.wild.lab.test") == "NXDOMAIN", timeout=10), relay.output()
    assert f"list {URL}: downloaded" in relay.output()
    logged = f'"list":"{URL}","line":2,"text":"||second.wild.lab.test^"'
    log = lab.state / "url-queries.jsonl"
    assert wait_for(lambda: logged in log.read_text(), timeout=5), log.read_text()[-2000:]
    # The cache holds the copy and its validators.
    copies = [p for p in cache.iterdir() if p.name.endswith(".txt")]
    assert len(copies) == 1 and "second.wild.lab.test" in copies[0].read_text()
    assert "etag " in (cache / (copies[0].name + ".meta")).read_text()


@pytest.mark.parametrize("mode,reported", [
    ("500", "status: the server answered HTTP 500"),
    ("truncated", "truncated: the body ended early"),
    ("huge", "oversized: the list is larger than"),
    ("garbage", "content: not a text list"),
    ("html", "content: the server sent an HTML page"),
])
def test_a_bad_download_keeps_the_rules_in_service(lab, relay_factory, list_server, mode, reported):
    set_mode(list_server, "ok")
    (list_server / "list.txt").write_text("||kept.wild.lab.test^\n")
    text, cache = url_config(lab, list_server, f"bad-{mode}", extra="metrics:\n  listen: 127.0.0.1:9153\n")
    relay = relay_factory(text, name=f"bad-{mode}")
    assert wait_for(lambda: status(lab, "kept.wild.lab.test") == "NXDOMAIN", timeout=10), relay.output()
    set_mode(list_server, mode)
    assert wait_for(lambda: reported in relay.output(), timeout=15), relay.output()
    assert "the copy in service stays" in relay.output()
    assert status(lab, "kept.wild.lab.test") == "NXDOMAIN"
    assert "huge.lab.test" not in "".join(p.read_text(errors="replace") for p in cache.iterdir() if p.suffix == ".txt")
    # Counted for /metrics.
    page = lab.exec(lab.rtr, "python3", "-c", "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9153/metrics').read().decode())",
                    check=True).stdout
    assert f'tproxy_relay_list_downloads_total{{list="{URL}",result="failed"}}' in page, page
    set_mode(list_server, "ok")


def test_the_cached_copy_serves_when_the_server_is_down_at_start(lab, relay_factory, list_server):
    set_mode(list_server, "ok")
    (list_server / "list.txt").write_text("||cached.wild.lab.test^\n")
    text, cache = url_config(lab, list_server, "down", refresh="1h")
    relay = relay_factory(text, name="down")
    assert wait_for(lambda: status(lab, "cached.wild.lab.test") == "NXDOMAIN", timeout=10), relay.output()
    relay.stop()
    # The server answers 500 from now on (as good as down), and the copy is old enough to be fetched.
    set_mode(list_server, "500")
    meta = next(p for p in cache.iterdir() if p.name.endswith(".meta"))
    meta.write_text(meta.read_text().replace("confirmed ", "confirmed 1"))
    relay = relay_factory(text, name="down-again")
    assert status(lab, "cached.wild.lab.test") == "NXDOMAIN"
    assert wait_for(lambda: "download failed, the copy in service stays" in relay.output(), timeout=10), relay.output()
    set_mode(list_server, "ok")


def test_with_nothing_cached_and_no_server_the_relay_starts_with_the_list_empty(lab, relay_factory, tmp_path):
    text = config(extra=f"""filters:
  lists: ["https://10.53.4.54:{PORT}/list.txt"]
  cache_dir: {lab.state / 'empty-cache'}
""")
    relay = relay_factory(text, name="nothing")
    assert "no downloaded copy yet" in relay.output()
    assert status(lab, "first.wild.lab.test") == "NOERROR"
    assert wait_for(lambda: "download failed" in relay.output(), timeout=10), relay.output()


def test_the_download_is_not_captured_by_the_relays_own_table(lab, relay_factory):
    """With intercept.local, this host's TCP 53 is captured; a list served over HTTP on port 53
    still downloads, because the relay's download sockets carry the bypass mark. The control: the
    same request from an unmarked process in the router is captured (and fails)."""
    directory = lab.state / "plain-server"
    directory.mkdir(exist_ok=True)
    (directory / "list.txt").write_text("||port53.wild.lab.test^\n")
    server = lab.spawn(lab.up, "python3", str(HERE / "list_server.py"), "serve", str(directory), "10.53.4.54", "53")
    assert server.stdout.readline().strip() == "serving"
    text = config(interfaces="[lan0]\n  local: true", extra=f"""filters:
  lists: ["http://10.53.4.54:53/list.txt"]
  cache_dir: {lab.state / 'plain-cache'}
""")
    relay = relay_factory(text, name="plain")
    assert wait_for(lambda: status(lab, "port53.wild.lab.test") == "NXDOMAIN", timeout=10), relay.output()
    control = lab.exec(lab.rtr, "python3", "-c",
                       "import urllib.request;print(urllib.request.urlopen('http://10.53.4.54:53/list.txt', timeout=3).read())")
    assert control.returncode != 0, control.stdout
    assert sum(1 for r in requests(directory) if r.startswith("GET /list.txt 200")) == 1, requests(directory)


def test_check_rejects_an_unsupported_scheme_with_file_and_line(lab):
    path = lab.state / "ftp.yaml"
    path.write_text("filters:\n  lists:\n    - rules/local.txt\n    - ftp://lists.example.test/ads.txt\n")
    out = run(BINARY, "check", "--config", str(path), check=False)
    assert out.returncode == 1
    assert f"{path}:4: filters.lists: 'ftp://lists.example.test/ads.txt': unsupported scheme 'ftp'" in out.stdout, out.stdout


def test_update_lists_fetches_now_and_check_reports_the_cache(lab, list_server):
    set_mode(list_server, "ok")
    (list_server / "list.txt").write_text("||manual.wild.lab.test^\nnot a rule line\n")
    text, cache = url_config(lab, list_server, "manual")
    path = lab.state / "manual.yaml"
    path.write_text(text)
    first = lab.exec(lab.rtr, BINARY, "update-lists", "--config", str(path))
    assert first.returncode == 0 and f"{URL}: updated, 40 bytes, 1 rules, 1 rejected" in first.stdout, first.stdout + first.stderr
    again = lab.exec(lab.rtr, BINARY, "update-lists", "--config", str(path))
    assert f"{URL}: unchanged" in again.stdout, again.stdout
    assert requests(list_server)[-1].startswith("GET /list.txt 304 inm=\""), requests(list_server)[-3:]
    check = lab.exec(lab.rtr, BINARY, "check", "--config", str(path))
    assert f"{URL}: 1 rules, 0 exceptions, 0 ignored, 1 rejected" in check.stdout, check.stdout
    assert f"{URL}:2: rejected:" in check.stdout and f"{URL}: cached copy {cache}/" in check.stdout, check.stdout
    # The server fails: update-lists says so (exit 1), check warns, the copy stays.
    set_mode(list_server, "500")
    failed = lab.exec(lab.rtr, BINARY, "update-lists", "--config", str(path))
    assert failed.returncode == 1 and "failed: status: the server answered HTTP 500; the cached copy stays" in failed.stdout, failed.stdout
    check = lab.exec(lab.rtr, BINARY, "check", "--config", str(path))
    assert "warning: the last download" in check.stdout and "status: the server answered HTTP 500" in check.stdout, check.stdout
    set_mode(list_server, "ok")


def test_a_damaged_cached_copy_is_put_aside_or_downloaded_again(lab, relay_factory, list_server):
    set_mode(list_server, "ok")
    (list_server / "list.txt").write_text("||repaired.wild.lab.test^\n")
    text, cache = url_config(lab, list_server, "damaged", refresh="1h")
    path = lab.state / "damaged.yaml"
    path.write_text(text)
    assert lab.exec(lab.rtr, BINARY, "update-lists", "--config", str(path)).returncode == 0
    copy = next(p for p in cache.iterdir() if p.name.endswith(".txt"))
    # Binary on disk (a full disk, a bad block): it cannot be loaded, so it is put aside and the
    # relay starts anyway, then downloads it again.
    copy.write_bytes(b"||repaired.wild.lab.test^\n\x00\x01")
    relay = relay_factory(text, name="damaged")
    assert f"list {URL}: the downloaded copy {copy} cannot be used" in relay.output(), relay.output()
    assert (cache / (copy.name + ".broken")).exists()
    assert wait_for(lambda: status(lab, "repaired.wild.lab.test") == "NXDOMAIN", timeout=10), relay.output()
    relay.stop()
    # Edited on disk into something that loads (nothing but an ignored line): its size is not the
    # one downloaded, so it is fetched again at once, although it was confirmed a minute ago.
    time.sleep(1.2)
    copy.write_text("<div>edited</div>\n")
    relay = relay_factory(text, name="damaged-again")
    assert wait_for(lambda: f"list {URL}: downloaded" in relay.output(), timeout=10), relay.output()
    assert wait_for(lambda: status(lab, "repaired.wild.lab.test") == "NXDOMAIN", timeout=10), relay.output()
