"""App start-up checks: public listening needs a password, a busy port names the next free one,
and building the app imports no torch/transformers (it must start in seconds)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import UserError
from webui import app

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_public_host_is_refused_without_auth(host, capsys, tmp_path):
    code = app.main(["--host", host, "--port", str(_free_port()), "--saves_dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to listen on") and "--auth" in err
    assert len(err.strip().splitlines()) == 1


def test_public_host_is_allowed_with_auth_or_auth_file(tmp_path):
    app.check_host("0.0.0.0", app.read_auth("alice:s3cret", None))
    users = tmp_path / "users.txt"
    users.write_text("# team\nalice:one\nbob:two:with:colons\n", encoding="utf-8")
    assert app.read_auth(None, str(users)) == [("alice", "one"), ("bob", "two:with:colons")]
    with pytest.raises(UserError, match="user:password"):
        app.read_auth("nopassword", None)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_auth(host):
    app.check_host(host, None)


def test_busy_port_says_so_and_names_the_next_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError) as err:
            app.check_port("127.0.0.1", port)
    message = str(err.value)
    assert f"port {port}" in message and "busy" in message
    nxt = int(message.rsplit("--port ", 1)[1])
    assert nxt > port and app.port_free("127.0.0.1", nxt)


def test_building_the_app_imports_no_torch_and_not_the_model_module(tmp_path):
    code = f"""
import json, sys
from webui import app
args = app.parse_args(["--saves_dir", {str(tmp_path / 'saves')!r}, "--no_demo_build"])
ctx = app.make_context(args)
blocks = app.build_app(ctx)
heavy = [m for m in ("torch", "transformers", "datasets", "accelerate", "peft", "trl", "core.model") if m in sys.modules]
print(json.dumps({{"heavy": heavy}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []  # start-up time itself is measured in tests/bench/ui_latency.py


def test_upload_cap_flag_is_checked():
    assert app.check_file_size("2GB") == "2gb"
    assert app.parse_args([]).max_file_size == "2gb"
    with pytest.raises(UserError, match="max_file_size"):
        app.check_file_size("lots")


def test_the_web_ui_never_imports_the_model_module():
    """core/model.py imports torch; the UI checks model sources with core/model_source.py, and
    loads models only in subprocesses (runs, exports) or through core.chat (the Chat tab)."""
    import re

    pattern = re.compile(r"^\s*(from core\.model import|from core import model\b|import core\.model\b(?!_))", re.M)
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "webui").rglob("*.py") if pattern.search(path.read_text())]
    assert not offenders, offenders
