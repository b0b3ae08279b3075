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


def test_planned_sections_are_warnings(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("intercept:\n  interfaces: [lan0]\nquerylog:\n  path: /tmp/q.jsonl\n")
    out = run(BINARY, "check", "--config", str(cfg), check=False)
    assert out.returncode == 0
    assert f"warning: {cfg}:3: querylog: ignored" in out.stdout


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
