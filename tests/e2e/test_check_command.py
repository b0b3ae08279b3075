"""`tproxy-relay check` on good and bad files: exit codes and file:line:key messages."""
from conftest import BINARY, ROOT, run


def test_shipped_config_is_valid():
    out = run(BINARY, "check", "--config", str(ROOT / "Configs" / "relay.yaml"), check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok" in out.stdout


def test_bad_config_names_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("intercept:\n  interfaces: [lan0]\nupstream:\n  timeout: soon\n")
    out = run(BINARY, "check", "--config", str(bad), check=False)
    assert out.returncode == 1
    assert f"{bad}:4: upstream.timeout: expected a duration such as 2s or 500ms, got 'soon'" in out.stdout


def test_missing_config_file(tmp_path):
    out = run(BINARY, "check", "--config", str(tmp_path / "none.yaml"), check=False)
    assert out.returncode == 1
    assert "cannot read the file" in out.stdout


def test_quic_and_limits_sections_are_checked(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("intercept:\n  interfaces: [lan0]\nquic:\n  block: true\nlimits:\n  max_quic_flows: 100\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 0, out.stdout
    assert "warning" not in out.stdout, out.stdout
    cfg.write_text("intercept:\n  interfaces: [lan0]\nlimits:\n  qps: 5\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 1
    assert f"{cfg}:4: limits.qps: unknown key (expected one of max_quic_flows, client_qps, client_burst, client_prefix_v4, client_prefix_v6, exempt, action)" in out.stdout


def test_check_counts_lists_and_strict_fails_on_rejected_lines(tmp_path):
    lst = tmp_path / "ads.txt"
    lst.write_text("! comment\n||ads.test^\n@@||ok.ads.test^\nx.test##.banner\n||bad name^\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("intercept:\n  interfaces: [lan0]\nfilters:\n  lists: [ads.txt]\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 0, out.stdout
    assert f"{lst}: 1 rules, 1 exceptions, 1 ignored, 1 rejected" in out.stdout
    assert f"{lst}:5: rejected: 'bad name' is not a host name: ||bad name^" in out.stdout
    assert run(BINARY, "check", "--strict", "--config", str(cfg), check=False).returncode == 1


def test_explain_names_the_deciding_line(tmp_path):
    lst = tmp_path / "ads.txt"
    lst.write_text("||ads.test^\n@@||ok.ads.test^\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"intercept:\n  interfaces: [lan0]\nfilters:\n  lists: [{lst}]\n")
    out = run(BINARY, "explain", "--config", str(cfg), "ok.ads.test", check=False).stdout
    assert "allowed (an exception won)" in out
    assert f"decided by {lst}:2: @@||ok.ads.test^" in out
    assert f"also matched {lst}:1: ||ads.test^" in out
    bad = run(BINARY, "explain", "--config", str(cfg), "x.test", "--type", "BOGUS", check=False)
    assert bad.returncode == 1 and "unknown record type" in bad.stdout


def test_check_refuses_a_broken_list_and_names_it(tmp_path):
    lst = tmp_path / "garbage.txt"
    lst.write_bytes(bytes(range(256)) * 4)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("intercept:\n  interfaces: [lan0]\nfilters:\n  lists: [garbage.txt]\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 1
    assert f"{lst}: is not a text file (a NUL byte on line 1)" in out.stdout, out.stdout


def test_check_names_a_client_policy_with_an_unknown_list(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("intercept:\n  interfaces: [lan0]\nfilters:\n  lists: [a.txt]\n  clients:\n"
                   "    - match: 10.53.1.0/24\n      lists: [b.txt]\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 1
    assert f"{cfg}:6: filters.clients.lists: '{tmp_path}/b.txt' is not one of filters.lists" in out.stdout, out.stdout


def test_explain_shows_rewrites_upstreams_and_clients(tmp_path):
    lst = tmp_path / "rules.txt"
    lst.write_text("||nas.test^$dnsrewrite=10.53.9.9\nserver=/corp.test/10.53.4.54#5353\n||kids.test^$client=10.53.1.0/24\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"intercept:\n  interfaces: [lan0]\nfilters:\n  lists: [{lst}]\n")
    out = run(BINARY, "explain", "--config", str(cfg), "www.nas.test", check=False).stdout
    assert "www.nas.test A: $dnsrewrite answers A 10.53.9.9" in out, out
    out = run(BINARY, "explain", "--config", str(cfg), "host.corp.test", check=False).stdout
    assert "allowed (no blocking rule matched), forwarded to 10.53.4.54:5353" in out, out
    assert f"decided by {lst}:2: server=/corp.test/10.53.4.54#5353" in out, out
    assert "allowed" in run(BINARY, "explain", "--config", str(cfg), "kids.test", check=False).stdout
    out = run(BINARY, "explain", "--config", str(cfg), "kids.test", "--client", "10.53.1.9", check=False).stdout
    assert "kids.test A from 10.53.1.9: blocked" in out, out
    bad = run(BINARY, "explain", "--config", str(cfg), "kids.test", "--client", "10.53.1", check=False)
    assert bad.returncode == 1 and "is not an IP address" in bad.stdout


def test_explain_runs_the_pipeline_with_the_server_asked(tmp_path):
    """Issue 14: `explain` is the datapath's own decision: --server is the address the client
    asked (a listener of the relay's own is refused as a loop), and a bad one is an error."""
    lst = tmp_path / "ads.txt"
    lst.write_text("||ads.test^\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"intercept:\n  interfaces: [lan0]\nlisten:\n  address: 127.0.0.1\n  dns_port: 15353\nfilters:\n  lists: [{lst}]\n")
    out = run(BINARY, "explain", "--config", str(cfg), "www.example.test", "--server", "10.53.2.53", check=False).stdout
    assert "allowed (no blocking rule matched), forwarded to 10.53.2.53:53" in out, out
    assert "  zones: no local zones" in out and "  rules: no rule matched" in out and "  cache: consulted" in out, out
    assert "  upstream: forwarded to 10.53.2.53:53 (the server the client asked)" in out, out
    out = run(BINARY, "explain", "--config", str(cfg), "ads.test", "--server", "127.0.0.1:15353", check=False).stdout
    assert "refused: addressed to the relay itself" in out and "  loop:" in out, out
    bad = run(BINARY, "explain", "--config", str(cfg), "x.test", "--server", "not-an-address", check=False)
    assert bad.returncode == 1 and "'not-an-address' is not an address" in bad.stdout, bad.stdout
    bad = run(BINARY, "explain", "--config", str(cfg), "a" * 70 + ".test", check=False)
    assert bad.returncode == 1 and "is not a valid domain name" in bad.stdout, bad.stdout


def test_the_dnstap_section_is_checked(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("intercept:\n  interfaces: [lan0]\ndnstap:\n  socket: tcp:10.53.2.9:6000\n  messages: [client_query, client_response]\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 0, out.stdout
    assert "dnstap: client_query, client_response to tcp:10.53.2.9:6000" in out.stdout, out.stdout
    cfg.write_text("intercept:\n  interfaces: [lan0]\ndnstap:\n  socket: udp:10.53.2.9:6000\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 1
    assert f"{cfg}:4: dnstap.socket: expected unix:" in out.stdout, out.stdout
