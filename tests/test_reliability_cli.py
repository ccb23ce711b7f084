"""Regression tests for issue 16 (command line): real ``thermoscope`` processes.

The matrix at the end asserts that no command prints a traceback for bad
input, an unwritable path or Ctrl-C (SIGINT sent to a running process).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backends import needs_torch

_SCRIPT = Path(sys.executable).with_name("thermoscope")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "thermoscope"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": ""}
LOGITS = "5,2.2,2,4.5,3,2.7"


def run(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def strict_json(text: str) -> object:
    """json.loads that refuses Infinity, -Infinity and NaN, as RFC 8259 does."""

    def refuse(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    data = json.loads(text, parse_constant=refuse)
    node = shutil.which("node")
    if node is not None:
        subprocess.run([node, "-e", "JSON.parse(require('fs').readFileSync(0, 'utf8'))"],
                       input=text, text=True, check=True, capture_output=True)  # fmt: skip
    return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cal")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 4)) * 2
    y = rng.integers(0, 4, 300)
    np.save(d / "z.npy", z)
    np.save(d / "y.npy", y)
    np.save(d / "b.npy", z > 0)
    np.savetxt(d / "row.csv", z[:1], delimiter=",")
    np.savetxt(d / "row_label.csv", y[:1])
    (d / "empty.csv").write_text("")
    (d / "a_file").write_text("x")
    (d / "folder.npy").mkdir()
    return d


# ------------------------------------------------------------------ item 1 and 9 on the CLI


def test_cli_top_k_beyond_int64_keeps_every_token() -> None:
    done = run("sample", "--logits", LOGITS, "--top-k", str(2**63), "-n", "100", "--json")
    assert done.returncode == 0, done.stderr
    kept = strict_json(done.stdout)["kept"]  # type: ignore[index]
    assert len(kept) == 6


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sample", "--logits", LOGITS, "--seed", str(2**64)], "`--seed` must be an integer <= "),
        (
            ["sample", "--logits", LOGITS, "--seed", "-1"],
            "`--seed` must be an integer >= 0, got -1.",
        ),
        (["sample", "--logits", LOGITS, "--seed", "x"], "`--seed` must be an integer in [0, "),
        (["sample", "--logits", LOGITS, "-n", str(2**63)], "`-n` must be an integer <= 100000000"),
        (["demo", "--seed", "-1"], "`--seed` must be an integer >= 0, got -1."),
        (["generate", "--prompt", "a", "--seed", str(2**64)], "`--seed` must be an integer <= "),
    ],
)
def test_cli_seeds_and_counts_name_the_option(args: list[str], needle: str) -> None:
    assert_one_line_error(run(*args), needle)


def test_cli_largest_seed_draws() -> None:
    done = run("sample", "--logits", LOGITS, "--seed", str(2**64 - 1), "-n", "10", "--json")
    assert done.returncode == 0, done.stderr
    assert strict_json(done.stdout)["seed"] == 2**64 - 1  # type: ignore[index]


# ------------------------------------------------------------------ item 4: unwritable outputs


@pytest.mark.parametrize(
    ("option", "where", "needle"),
    [
        ("--out", "missing/t.json", "must be in an existing folder"),
        ("--out", "a_file/t.json", "is a file"),
        ("--out", ".", "must be a file path, got the folder"),
        ("--out", "/proc/t.json", "must be a writable folder"),
        ("--plot", "missing/r.png", "must be in an existing folder"),
        ("--plot", "a_file/r.png", "is a file"),
        ("--plot", ".", "must be a file path, got the folder"),
        ("--plot", "r.notanimage", "must end in an image suffix"),
    ],
)
def test_calibrate_unwritable_output_is_refused_before_the_fit(
    data: Path, option: str, where: str, needle: str
) -> None:
    if where.startswith("/proc") and not Path("/proc").is_dir():
        pytest.skip("needs a read-only /proc")
    done = run("calibrate", "--logits", "z.npy", "--labels", "y.npy", option, where, cwd=data)
    assert_one_line_error(done, f"`{option}`", needle)


def test_demo_unwritable_out_folder_is_one_line(data: Path) -> None:
    assert_one_line_error(run("demo", "theory", "--out", "a_file/sub", cwd=data), "`--out`")
    if Path("/proc").is_dir():
        assert_one_line_error(run("demo", "theory", "--out", "/proc"), "`--out`", "writable")


# ------------------------------------------------------------------ items 7, 11, 12, 15, 19


def test_calibrate_bins_are_capped(data: Path) -> None:
    done = run("calibrate", "--logits", "z.npy", "--labels", "y.npy", "--n-bins", "1000000000000",
               cwd=data)  # fmt: skip
    assert_one_line_error(done, "`--n-bins` must be an integer <= 1000000, got 1000000000000.")


@pytest.mark.parametrize(
    ("logits", "extra", "needle"),
    [
        ("folder.npy", [], "`--logits` must be a file, got the folder"),
        ("empty.csv", [], "`--logits` must not be empty"),
        ("b.npy", [], "`--logits` must hold a numeric array, got bool"),
        ("b.npy", ["--stream"], "`--logits` must hold a numeric array, got bool"),
    ],
)
def test_calibrate_bad_inputs_are_one_clear_line(
    data: Path, logits: str, extra: list[str], needle: str
) -> None:
    assert_one_line_error(run("calibrate", "--logits", logits, "--labels", "y.npy", *extra,
                              cwd=data), needle)  # fmt: skip


def test_calibrate_probs_range_error_shows_a_plain_number(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([[1.5, -0.5], [0.5, 0.5]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    done = run("calibrate", "--logits", "p.npy", "--labels", "y.npy", "--probs", cwd=tmp_path)
    assert_one_line_error(done, "`--logits` must lie in [0, 1], got ")
    assert "np.float" not in done.stderr


def test_calibrate_one_row_csv_is_one_row(data: Path) -> None:
    done = run("calibrate", "--logits", "row.csv", "--labels", "row_label.csv", "--json", cwd=data)
    assert done.returncode == 0, done.stderr
    assert strict_json(done.stdout)["validation"]["n_samples"] == 1  # type: ignore[index]


def test_demo_prints_nothing_on_stderr_when_it_is_not_a_terminal(tmp_path: Path) -> None:
    done = run("demo", "recommend", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar, no warning


# ------------------------------------------------------------------ item 16: --plot is atomic


def test_calibrate_plot_is_written_atomically(data: Path, tmp_path: Path) -> None:
    plot = tmp_path / "rel.png"
    done = run("calibrate", "--logits", str(data / "z.npy"), "--labels", str(data / "y.npy"),
               "--plot", str(plot))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert plot.read_bytes().endswith(b"IEND\xaeB`\x82")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rel.png"]  # no temporary left behind


# ------------------------------------------------------------------ item 13: strict JSON


@pytest.mark.parametrize(
    "args",
    [
        ["softmax", "--logits", "1,-inf,2", "-t", "inf", "0", "1", "--json"],
        ["sample", "--logits", "1,-inf,2", "-t", "inf", "-n", "100", "--json"],
        ["entropy-target", "--logits", "1,2,3", "--entropy", str(math.log(3)), "--json"],
        ["entropy-target", "--logits", "1,2,-inf", "--entropy", "0", "--json"],
        ["presets", "--json"],
    ],
)
def test_json_output_is_strict_json(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 0, done.stderr
    assert "Infinity" not in done.stdout
    assert "NaN" not in done.stdout
    strict_json(done.stdout)


def test_json_writes_non_finite_numbers_as_strings() -> None:
    done = run("softmax", "--logits", "1,-inf", "-t", "inf", "--json")
    out = strict_json(done.stdout)
    assert out["logits"] == [1.0, "-inf"]  # type: ignore[index]
    assert out["rows"][0]["temperature"] == "inf"  # type: ignore[index]
    assert float(out["rows"][0]["temperature"]) == math.inf  # type: ignore[index]


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("command", ["generate", "next"])
def test_model_json_at_infinite_temperature_is_strict(command: str) -> None:
    extra = ["-n", "1", "--max-new-tokens", "3"] if command == "generate" else ["--top", "3"]
    done = run(command, "--prompt", "def", "-t", "inf", "--json", *extra)
    assert done.returncode == 0, done.stderr
    strict_json(done.stdout)


# ------------------------------------------------------------------ items 6, 11, 12: models


@pytest.fixture(scope="module")
def broken_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from thermoscope.models import embedded_model_path

    root = tmp_path_factory.mktemp("models")
    truncated = root / "truncated"
    shutil.copytree(embedded_model_path(), truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    pickled = root / "pickled"
    shutil.copytree(embedded_model_path(), pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    return {"truncated": truncated, "pickled": pickled}


@needs_torch
@pytest.mark.parametrize(("kind", "needle"), [("truncated", "weights cannot be loaded"),
                                              ("pickled", "never loaded")])  # fmt: skip
@pytest.mark.parametrize("command", ["generate", "next"])
def test_bad_model_folders_are_one_line(
    broken_models: dict[str, Path], kind: str, needle: str, command: str
) -> None:
    done = run(command, "--prompt", "def", "--model", str(broken_models[kind]))
    assert_one_line_error(done, "`model` must be", needle)


@needs_torch
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "--prompt", "abc\udcff"], "`prompt` must be valid UTF-8"),
        (["next", "--prompt", "def", "-t", "-1"], "`--temperature` must be >= 0"),
        (["generate", "--prompt", "def", "-t", "-1"], "`--temperature` must be >= 0"),
        (["next", "--prompt", "x = 1\n" * 400], "`prompt` must be shorter"),
    ],
)
def test_prompt_and_temperature_errors_are_one_accurate_line(args: list[str], needle: str) -> None:
    argv = [os.fsencode(a) for a in args]  # the surrogate goes back to the raw byte 0xff
    done = subprocess.run([*COMMAND, *argv], capture_output=True, text=True, env=ENV, timeout=120,
                          check=False, errors="replace")  # fmt: skip
    assert_one_line_error(done, needle)


# ------------------------------------------------------------------ the matrix: never a traceback

BAD_INPUT = [
    ["softmax", "--logits", "1,nan"],
    ["softmax", "--logits", "a,b"],
    ["softmax", "--logits", "1,2", "-t", "-1"],
    ["sample", "--logits", "1,2", "--top-k", "-5"],
    ["sample", "--logits", "1,2", "--top-p", "x"],
    ["sample", "--logits", "1,2", "--top-n-sigma", "-1"],
    ["sample", "--logits", "1,2", "--history", "1,x"],
    ["sample", "--logits", "1,2", "--logit-bias", "9=1"],
    ["sample", "--logits", "1,2", "--no-repeat-ngram", str(2**70)],
    ["entropy-target", "--logits", "1,2", "--entropy", "9"],
    ["entropy-target", "--logits", "1,2", "--entropy", "nan"],
    ["calibrate", "--logits", "missing.npy", "--labels", "y.npy"],
    ["calibrate", "--logits", "z.npy", "--labels", "z.npy"],
    ["calibrate", "--logits", "z.npy", "--labels", "y.npy", "--n-bins", "0"],
    ["calibrate", "--logits", "a_file", "--labels", "y.npy"],
    ["demo", "no-such-demo"],
    ["presets", "--no-such-flag"],
    ["explore", "--port", "99999"],
    ["no-such-command"],
]


@pytest.mark.parametrize(
    "flags",
    [
        ["--penalty-last-n", str(2**70), "--repetition-penalty", "1.2"],
        ["--no-repeat-ngram", str(2**70)],
        ["--dry-multiplier", "1", "--dry-allowed-length", str(2**70)],
        ["--top-k", str(2**70)],
    ],
)
def test_huge_integer_options_mean_all_and_work(flags: list[str]) -> None:
    done = run("sample", "--logits", "1,2,3", "--history", "0,1,0", "-n", "50", "--json", *flags)
    assert done.returncode == 0, done.stderr
    assert len(strict_json(done.stdout)["kept"]) == 3  # type: ignore[index]


@pytest.mark.parametrize("args", BAD_INPUT, ids=lambda a: " ".join(a)[:60])
def test_matrix_bad_input_never_prints_a_traceback(data: Path, args: list[str]) -> None:
    done = run(*args, cwd=data)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


UNWRITABLE = [
    ["calibrate", "--logits", "z.npy", "--labels", "y.npy", "--out", "a_file/x.json"],
    ["calibrate", "--logits", "z.npy", "--labels", "y.npy", "--plot", "a_file/x.png"],
    ["calibrate", "--logits", "z.npy", "--labels", "y.npy", "--out", "folder.npy"],
    ["demo", "theory", "--out", "a_file"],
    ["demo", "--out", "a_file/below"],
]


@pytest.mark.parametrize("args", UNWRITABLE, ids=lambda a: " ".join(a)[:60])
def test_matrix_unwritable_path_never_prints_a_traceback(data: Path, args: list[str]) -> None:
    done = run(*args, cwd=data)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def interrupt(args: list[str], cwd: Path, after: float) -> subprocess.CompletedProcess[str]:
    """Start ``thermoscope ARGS``, send SIGINT after ``after`` seconds, collect its output."""
    proc = subprocess.Popen([*COMMAND, *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(after)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert still_running, f"{args} finished before the signal: {err}"
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def assert_interrupted(done: subprocess.CompletedProcess[str], cwd: Path) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert done.stderr.strip().splitlines()[-1].endswith("interrupted"), done.stderr
    leftovers = [p.name for p in cwd.rglob(".*.tmp")]
    assert leftovers == [], leftovers  # no half-written file


def test_matrix_sigint_sample(tmp_path: Path) -> None:
    done = interrupt(["sample", "--logits", LOGITS, "-n", "100000000"], tmp_path, after=3.0)
    assert_interrupted(done, tmp_path)
    assert done.stderr.strip() == "thermoscope sample: interrupted"


@pytest.fixture(scope="module")
def big_npy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(1)
    rows = 1_500_000
    z = np.lib.format.open_memmap(d / "z.npy", mode="w+", dtype=np.float32, shape=(rows, 32))
    for r0 in range(0, rows, 250_000):
        z[r0 : r0 + 250_000] = rng.normal(size=(250_000, 32)).astype(np.float32) * 3
    z.flush()
    del z
    np.save(d / "y.npy", rng.integers(0, 32, rows))
    return d


@pytest.mark.slow
def test_matrix_sigint_calibrate_stream(big_npy: Path) -> None:
    done = interrupt(["calibrate", "--logits", "z.npy", "--labels", "y.npy", "--stream",
                      "--out", "t.json"], big_npy, after=3.0)  # fmt: skip
    assert_interrupted(done, big_npy)
    assert not (big_npy / "t.json").exists()


@pytest.mark.slow
def test_matrix_sigint_demo(tmp_path: Path) -> None:
    done = interrupt(["demo", "--out", str(tmp_path / "out")], tmp_path, after=4.0)
    assert_interrupted(done, tmp_path)
    for png in (tmp_path / "out").glob("*.png"):  # whatever was written is whole
        assert png.read_bytes().endswith(b"IEND\xaeB`\x82"), png


@needs_torch
@pytest.mark.slow
def test_matrix_sigint_generate(tmp_path: Path) -> None:
    done = interrupt(["generate", "--prompt", "def", "-n", "200", "--max-new-tokens", "200"],
                     tmp_path, after=4.0)  # fmt: skip
    assert_interrupted(done, tmp_path)


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "after"),
    [
        (["next", "--prompt", "def", "-t", *[str(t / 10) for t in range(1, 400)]], 2.5),
        (["distill-demo", "--out", "out"], 4.0),
    ],
    ids=["next", "distill-demo"],
)
def test_matrix_sigint_next_and_old_demo_names(
    tmp_path: Path, args: list[str], after: float
) -> None:
    assert_interrupted(interrupt(args, tmp_path, after=after), tmp_path)


# ------------------------------------------------------------------ item 17: explore --host 0.0.0.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_explore_on_all_addresses_accepts_the_names_its_warning_gives(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen([*COMMAND, "explore", "--no-model", "--host", "0.0.0.0",
                             "--port", str(port)], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        warning = proc.stderr.readline()
        assert "thermoscope explorer on" in proc.stdout.readline()
        assert "reachable from other machines as " in warning
        names = warning.strip().split(" as ", 1)[1].split(", ")
        assert "0.0.0.0" in names
        assert len(names) >= 2  # the machine's own name or address too
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        for name in names:  # what the warning says is allowed is allowed
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": name})
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert answer.status == 200, name
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err


def test_explore_allowed_hosts_include_the_machine_for_a_wildcard_bind() -> None:
    import socket

    from thermoscope.cli.explore import _serving_hosts

    hosts = _serving_hosts("0.0.0.0")
    assert socket.gethostname() in hosts
    assert "127.0.0.1" in hosts
    assert _serving_hosts("192.0.2.7") == [*_serving_hosts("127.0.0.1")[:4], "192.0.2.7"]
