"""``thermoscope explore``: help, one-line errors with exit status 2, and a real server.

The in-process tests replace ``serve`` with a function that fails the test, so
a check that wrongly passed would fail fast instead of serving forever.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from thermoscope.cli import main

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the explorer would have started serving")

    monkeypatch.setattr("thermoscope.explorer.server.serve", refuse)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_help_lists_the_options_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--no-model", "--host", "--port"):
        assert option in out
    assert "examples:" in out
    assert "thermoscope explore --no-model" in out
    assert "thermoscope explore --port 9000" in out
    assert "127.0.0.1" in out


def test_explore_is_listed_in_the_main_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "explore" in capsys.readouterr().out


@pytest.mark.parametrize("port", ["0", "70000", "-1", "abc", "80.5"])
def test_bad_port_is_exit_2_naming_port(
    capsys: pytest.CaptureFixture[str], no_serving: None, port: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "--no-model", f"--port={port}"])
    assert exit_info.value.code == 2
    line = one_error_line(capsys)
    assert "port" in line
    assert line.startswith("thermoscope explore: error:")


def test_missing_model_is_exit_2_naming_model(
    capsys: pytest.CaptureFixture[str], no_serving: None
) -> None:
    assert main(["explore", "--model", "/no/such", "--port", str(free_port())]) == 2
    line = one_error_line(capsys)
    assert "`model`" in line
    assert "/no/such" in line


def test_no_model_with_a_model_is_exit_2(
    capsys: pytest.CaptureFixture[str], no_serving: None
) -> None:
    argv = ["explore", "--no-model", "--model", "somewhere", "--port", str(free_port())]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert "`model`" in line
    assert "--no-model" in line


def test_model_mode_without_transformers_is_exit_2_suggesting_no_model(
    capsys: pytest.CaptureFixture[str], no_serving: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import transformers` raise ModuleNotFoundError,
    # as on an install without the hf extra.
    monkeypatch.setitem(sys.modules, "transformers", None)
    assert main(["explore", "--port", str(free_port())]) == 2
    line = one_error_line(capsys)
    assert "`model`" in line
    assert "transformers" in line
    assert "--no-model" in line


def test_port_in_use_is_exit_2_naming_port(
    capsys: pytest.CaptureFixture[str], no_serving: None
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["explore", "--no-model", "--port", str(port)]) == 2
    line = one_error_line(capsys)
    assert "`port`" in line
    assert str(port) in line


def test_a_real_server_answers_and_stops() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    assert (ROOT / "src" / "thermoscope" / "__main__.py").is_file()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "thermoscope", "explore", "--no-model", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = None
        deadline = time.monotonic() + 60  # bounds the wait for start-up; not a timing check
        while info is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}: {proc.stderr.read()}")
            try:
                with urllib.request.urlopen(f"{url}/api/info", timeout=5) as r:
                    assert r.status == 200
                    info = json.loads(r.read())
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert info is not None, "the server did not answer /api/info within 60 s"
        assert info["model"] is None
        assert info["examples"][0]["name"] == "cat-dog-fish"
        request = urllib.request.Request(
            f"{url}/api/distribution",
            data=json.dumps({"logits": [2, 1, 0.5], "top_k": 2}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert json.loads(r.read())["kept"] == [True, True, False]
        # A page that rebinds its own domain to 127.0.0.1 sends its own name as Host.
        rebound = urllib.request.Request(f"{url}/api/info", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=5)
        assert refused.value.code == 400
        refused.value.close()  # the error holds the response's socket
        localhost = urllib.request.Request(f"{url}/api/info", headers={"Host": f"localhost:{port}"})
        with urllib.request.urlopen(localhost, timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the server did not stop on SIGTERM: {err}")
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    if sys.platform != "win32":
        assert proc.returncode in (0, -signal.SIGTERM), err
    assert f"http://127.0.0.1:{port}" in out
