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
