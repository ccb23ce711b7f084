"""The generate, next and presets commands on a random GPT-2 saved to a temp dir."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from test_generation_runs import save_tiny_lm
from thermoscope.cli import generate, next_token, presets
from thermoscope.cli._args import CommandParser


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return save_tiny_lm(tmp_path_factory.mktemp("cli_lm"))


def parser() -> CommandParser:
    p = CommandParser(prog="thermoscope")
    sub = p.add_subparsers(dest="command", parser_class=CommandParser)
    for command in (generate, next_token, presets):
        command.register(sub)
    return p


def call(argv: list[str]) -> str:
    args = parser().parse_args(argv)
    return args.run(args)


def test_generate_text(lm_dir):
    out = call(["generate", "--prompt", "def parse(", "-t", "0.2", "1.2", "-n", "2",
                "--max-new-tokens", "5", "--model", str(lm_dir)])  # fmt: skip
    assert "T = 0.2" in out
    assert "T = 1.2" in out
    assert "distinct-1" in out
    assert "self-BLEU" in out


def test_generate_json_with_preset_and_overrides(lm_dir):
    out = call(["generate", "--prompt", "def parse(", "--preset", "code", "--top-p", "0.8",
                "-n", "2", "--max-new-tokens", "3", "--seed", "1", "--json",
                "--model", str(lm_dir)])  # fmt: skip
    data = json.loads(out)
    assert [d["temperature"] for d in data["diversity"]] == [0.2, 0.3, 0.5]  # code's range
    assert data["sampler_options"] == {"top_p": 0.8}
    assert len(data["samples"]) == 6
    assert data["model"] == str(lm_dir)
    again = json.loads(call(["generate", "--prompt", "def parse(", "--preset", "code",
                             "--top-p", "0.8", "-n", "2", "--max-new-tokens", "3", "--seed",
                             "1", "--json", "--model", str(lm_dir)]))  # fmt: skip
    assert again == data


def test_generate_compare_dynamic(lm_dir):
    out = call(["generate", "--prompt", "def parse(", "--compare-dynamic", "-t", "0.7", "-n",
                "2", "--max-new-tokens", "3", "--model", str(lm_dir)])  # fmt: skip
    for name in ("T = 0.7", "entropy T in [0.3, 1.3]", "mirostat tau=3", "min-p 0.1, T = 1.5"):
        assert name in out
    argv = ["generate", "--prompt", "x", "--compare-dynamic", "-t", "1", "-n", "2",
            "--max-new-tokens", "2", "--json", "--model", str(lm_dir)]  # fmt: skip
    data = json.loads(call(argv))
    assert data["strategies"][0]["strategy"] == "T = 1"


def test_next(lm_dir):
    out = call(["next", "--prompt", "def parse(", "-t", "0.5", "1", "2", "--top", "4",
                "--model", str(lm_dir)])  # fmt: skip
    assert "T=0.5" in out
    assert "entropy" in out
    data = json.loads(call(["next", "--prompt", "def", "--top-p", "0.5", "--json",
                            "--model", str(lm_dir)]))  # fmt: skip
    assert len(data["tokens"]) == 10
    assert len(data["rows"]) == 3


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["generate", "--prompt", ""], "prompt"),
        (["generate", "--prompt", "x = 1\n" * 40], "prompt"),
        (["generate", "--prompt", "def", "--max-new-tokens", "0"], "max_new_tokens"),
        (["generate", "--prompt", "def", "--max-new-tokens", "100000"], "max_new_tokens"),
        (["generate", "--prompt", "def", "--preset", "poetry"], "preset"),
        (["generate", "--prompt", "def", "-n", "0"], "n"),
        (["generate", "--prompt", "def", "--top-p", "2"], "top_p"),
        (["next", "--prompt", ""], "prompt"),
        (["next", "--prompt", "x = 1\n" * 40], "prompt"),
        (["next", "--prompt", "def", "--top", "0"], "top"),
    ],
)
def test_bad_input_is_one_clear_line(lm_dir, argv, name):
    with pytest.raises(ValueError, match=f"`{name}` must") as info:
        call([*argv, "--model", str(lm_dir)])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("command", ["generate", "next"])
def test_bad_model_paths(tmp_path, command):
    (tmp_path / "not_a_model").mkdir()
    (tmp_path / "not_a_model" / "config.json").write_text('{"model_type": "vit"}')
    for path in (tmp_path / "missing", tmp_path / "not_a_model"):
        with pytest.raises(ValueError, match="`model` must") as info:
            call([command, "--prompt", "def", "--model", str(path)])
        assert "\n" not in str(info.value)


def test_parse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["generate", "--prompt", "def", "-n", "many"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "-n" in err
    with pytest.raises(SystemExit):
        parser().parse_args(["next"])  # --prompt is required


def test_presets_command():
    assert "creative-writing" in call(["presets"])


def _embedded_installed() -> bool:
    try:
        from thermoscope.models import embedded_model_path
    except ImportError:
        return False
    return (embedded_model_path() / "config.json").is_file()


@pytest.mark.skipif(not _embedded_installed(), reason="the embedded model is not installed")
def test_next_defaults_to_the_embedded_model():
    data = json.loads(call(["next", "--prompt", "import ", "-t", "0.2", "1", "--json"]))
    assert data["model"] == "embedded"
    assert data["rows"][0]["entropy"] < data["rows"][1]["entropy"]


@pytest.mark.skipif(not _embedded_installed(), reason="the embedded model is not installed")
def test_generation_demo_on_the_embedded_model(tmp_path):
    from thermoscope.demos.generation import generation_demo

    text = generation_demo(tmp_path, seed=0, quick=True)
    assert "Generation with the embedded model" in text
    assert (tmp_path / "generation.txt").is_file()
