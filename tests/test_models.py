"""The embedded language model, its loader and the script that trains it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import keyword
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from thermoscope.generation.model import embedded_model_path, load_model
from thermoscope.models import EMBEDDED_MODEL

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_tiny_lm.py"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
MAX_BYTES = 10_000_000


@pytest.fixture(scope="module")
def embedded() -> tuple[Any, Any]:
    return load_model()


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return json.loads((embedded_model_path() / "training.json").read_text(encoding="utf-8"))


def _greedy(model: Any, tokenizer: Any, prompt: str, n: int = 40) -> str:
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=n,
            pad_token_id=tokenizer.eos_token_id,
        )
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


# --- the shipped folder ------------------------------------------------------------


def test_embedded_model_loads_like_any_model() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

    path = embedded_model_path()
    assert path.name == EMBEDDED_MODEL
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert isinstance(model, GPT2LMHeadModel)
    assert model.config.model_type == "gpt2"
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|endoftext|>"
    assert tokenizer.eos_token_id == model.config.eos_token_id
    assert tokenizer.model_max_length == model.config.n_positions


def test_embedded_folder_is_complete_and_small() -> None:
    path = embedded_model_path()
    names = {f.name for f in path.iterdir()}
    expected = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert expected | {"generation_config.json", "training.json"} <= names
    # Only the files save_pretrained and the script write: nothing stray gets shipped.
    assert not {n for n in names if n.startswith(".")}
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert total < MAX_BYTES


def test_parameter_count_is_in_the_documented_range(
    embedded: tuple[Any, Any], record: dict[str, Any]
) -> None:
    model, _ = embedded
    n = sum(p.numel() for p in model.parameters())
    assert n == record["parameters"]
    assert 300_000 <= n <= 3_000_000
    # Float32 weights stored once (the output layer is tied to the input embedding).
    size = (embedded_model_path() / "model.safetensors").stat().st_size
    assert 4 * n <= size < 4 * n + 100_000


def test_load_model_default_is_eval_mode(embedded: tuple[Any, Any]) -> None:
    model, tokenizer = embedded
    assert not model.training
    assert type(tokenizer).__name__ in {"PreTrainedTokenizerFast", "TokenizersBackend"}


# --- the tokenizer -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["argparse.py", "json/decoder.py", "textwrap.py"])
def test_tokenizer_round_trips_python_source(embedded: tuple[Any, Any], name: str) -> None:
    _, tokenizer = embedded
    text = (STDLIB / name).read_text(encoding="utf-8")
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text
    # A BPE trained on Python compresses Python: bytes alone would give 1 char per token.
    assert len(text) / len(ids) > 2.5


def test_tokenizer_round_trips_awkward_text(embedded: tuple[Any, Any]) -> None:
    _, tokenizer = embedded
    text = 'x  =\t"é ✓ 🐍"  \r\n\n    return  {a : b}  # <|endoftext|> done \x00'
    assert tokenizer.decode(tokenizer(text).input_ids) == text


def test_tokenizer_keeps_indentation_runs_together(embedded: tuple[Any, Any]) -> None:
    _, tokenizer = embedded
    ids = tokenizer("        return self").input_ids
    # Eight spaces of indentation are a handful of tokens, not eight.
    assert len(ids) <= 4


# --- the trained model ---------------------------------------------------------------


def _complete_lines_compile(source: str) -> bool:
    """Whether the finished lines of ``source`` (the cut-off last one dropped) are Python."""
    lines = source.split("\n")[:-1]
    if len(lines) < 2:
        return False
    try:
        compile(textwrap.dedent("\n".join(lines)) + "\n", "<sample>", "exec")
    except SyntaxError:
        return False
    return True


def _looks_like_python(prompt: str, text: str) -> bool:
    """A per-prompt check that a greedy continuation is what Python would have there."""
    if not all(c.isprintable() or c in "\n\t" for c in text):
        return False
    if prompt == "import":
        # " os.path" or " sys": a space, then a module that really exists.
        match = re.match(r" ([A-Za-z_][A-Za-z0-9_]*)", text)
        return match is not None and importlib.util.find_spec(match.group(1)) is not None
    if prompt == "class Foo:\n    def":
        # A method, " name(self", and finished lines that compile.
        match = re.match(r" ([A-Za-z_][A-Za-z0-9_]*)\(self", text)
        return (
            match is not None
            and not keyword.iskeyword(match.group(1))
            and _complete_lines_compile(prompt + text)
        )
    if prompt == "    def __init__(self":
        # The signature closes with "):" and an indented body follows.
        lines = [line for line in text.split("\n") if line.strip()]
        return (
            len(lines) >= 2
            and lines[0].rstrip().endswith("):")
            and len(lines[1]) - len(lines[1].lstrip()) > 4
        )
    raise AssertionError(prompt)


# No trailing space in the prompts: "def " ends in a lone " " token, which the
# GPT-2 pre-tokenizer only ever produces before another space (real GPT-2 has
# the same quirk), so models of this kind derail after it.
PROMPTS = ["import", "class Foo:\n    def", "    def __init__(self"]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_continuation_looks_like_python(embedded: tuple[Any, Any], prompt: str) -> None:
    model, tokenizer = embedded
    text = _greedy(model, tokenizer, prompt)
    assert _looks_like_python(prompt, text), text


@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_random_model_fails_the_python_checks(embedded: tuple[Any, Any], prompt: str) -> None:
    # The checks above can fail: the same architecture with random weights fails them.
    from transformers import GPT2LMHeadModel

    trained, tokenizer = embedded
    torch.manual_seed(0)
    random_model = GPT2LMHeadModel(trained.config).eval()
    text = _greedy(random_model, tokenizer, prompt)
    assert not _looks_like_python(prompt, text), text


def _validation_tokens(tokenizer: Any, record: dict[str, Any], n_files: int) -> list[np.ndarray]:
    names = [n for n in record["data"]["val_file_names"] if (STDLIB / n).is_file()]
    if not names:
        pytest.skip("none of the held-out standard library files exist on this Python")
    # The largest held-out files: enough tokens for a stable unigram estimate.
    names = sorted(names, key=lambda n: -(STDLIB / n).stat().st_size)[:n_files]
    texts = [(STDLIB / n).read_text(encoding="utf-8") for n in names]
    return [np.asarray(tokenizer(t).input_ids, dtype=np.int64) for t in texts]


def test_validation_loss_beats_the_unigram_entropy(
    embedded: tuple[Any, Any], record: dict[str, Any]
) -> None:
    model, tokenizer = embedded
    files = _validation_tokens(tokenizer, record, n_files=3)
    tokens = np.concatenate(files)
    counts = np.bincount(tokens, minlength=len(tokenizer)).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    # The plug-in estimate is biased low (it never sees unseen tokens), which
    # only makes the bar harder to clear.
    unigram = float(-(p * np.log(p)).sum())
    recorded = float(record["final_val_loss"])
    assert recorded < unigram - 1.0

    # The recorded number belongs to the shipped weights: recompute the loss on
    # 256-token windows of the same held-out files.
    length = model.config.n_positions
    windows = np.concatenate([f[: len(f) // length * length].reshape(-1, length) for f in files])
    batch = torch.from_numpy(windows[:: max(1, len(windows) // 16)][:16])
    with torch.no_grad():
        loss = float(model(input_ids=batch, labels=batch).loss)
    assert loss < unigram - 1.0
    assert abs(loss - recorded) < 0.6


def test_training_record_is_consistent(record: dict[str, Any]) -> None:
    assert record["seed"] == 0
    assert record["steps"] == record["settings"]["steps"] == record["history"][-1]["step"]
    assert record["data"]["train_files"] > 100
    assert record["data"]["val_files"] == len(record["data"]["val_file_names"]) > 0
    assert 0 < record["final_val_loss"] < record["history"][0]["val_loss"]
    assert set(record["versions"]) >= {"python", "torch", "transformers", "tokenizers"}


# --- load_model: any local causal LM, clear errors otherwise -------------------------


def _tiny_gpt2(folder: Path, *, tokenizer: bool = True, weights: bool = True) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=4096, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    config.bos_token_id = config.eos_token_id = 0
    model = GPT2LMHeadModel(config)
    if weights:
        model.save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    if tokenizer:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).write_bytes((embedded_model_path() / name).read_bytes())
    return folder


def test_load_model_loads_any_local_causal_lm(tmp_path: Path) -> None:
    from transformers import GPT2LMHeadModel

    folder = _tiny_gpt2(tmp_path / "random-gpt2")
    model, tokenizer = load_model(str(folder))
    assert isinstance(model, GPT2LMHeadModel)
    assert model.config.n_embd == 16
    assert not model.training
    assert tokenizer.decode(tokenizer("x = 1").input_ids) == "x = 1"


def test_load_model_works_offline(tmp_path: Path) -> None:
    # HF_HUB_OFFLINE is read when huggingface_hub is imported: check it in a fresh process.
    code = (
        "from thermoscope.generation import load_model; m, t = load_model(); "
        "print(m.config.model_type, type(m).__name__)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["gpt2", "GPT2LMHeadModel"]
    assert not (tmp_path / "empty-hf-home" / "hub").exists()


def _assert_model_error(path: Path, why: str) -> None:
    with pytest.raises(ValueError, match=r"^`model` must be a local transformers causal") as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert why in str(info.value)


def test_load_model_rejects_a_missing_path(tmp_path: Path) -> None:
    _assert_model_error(tmp_path / "nowhere", "no such directory")


def test_load_model_rejects_a_file(tmp_path: Path) -> None:
    file = tmp_path / "model.bin"
    file.write_bytes(b"\0")
    _assert_model_error(file, "a file, not a directory")


def test_load_model_rejects_a_folder_without_config(tmp_path: Path) -> None:
    _assert_model_error(tmp_path, "no config.json in it")


def test_load_model_rejects_an_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    _assert_model_error(tmp_path, "config.json cannot be read")


def test_load_model_rejects_an_unknown_model_type(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "no-such-model"}', encoding="utf-8")
    _assert_model_error(tmp_path, "config.json cannot be read")


def test_load_model_rejects_a_bert_config(tmp_path: Path) -> None:
    from transformers import BertConfig

    BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    _assert_model_error(tmp_path, "model type 'bert' is an encoder")


def test_load_model_rejects_an_encoder_decoder(tmp_path: Path) -> None:
    from transformers import BartConfig

    BartConfig(d_model=16, encoder_layers=1, decoder_layers=1).save_pretrained(tmp_path)
    _assert_model_error(tmp_path, "model type 'bart' is an encoder-decoder")


def test_load_model_rejects_a_type_without_causal_head(tmp_path: Path) -> None:
    from transformers import T5Config

    T5Config(d_model=16, num_layers=1, num_heads=2).save_pretrained(tmp_path)
    _assert_model_error(tmp_path, "model type 't5' has no causal language model head")


def test_load_model_rejects_a_headless_architecture(tmp_path: Path) -> None:
    from transformers import GPT2Config

    config = GPT2Config(n_embd=16, n_layer=1, n_head=2)
    config.architectures = ["GPT2ForSequenceClassification"]
    config.save_pretrained(tmp_path)
    _assert_model_error(tmp_path, "architecture GPT2ForSequenceClassification is not a causal")


def test_load_model_accepts_bert_as_a_decoder(tmp_path: Path) -> None:
    # An encoder family counts as causal exactly when its config says so; the
    # check then moves on (and stops at the missing tokenizer).
    from transformers import BertConfig

    BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, is_decoder=True
    ).save_pretrained(tmp_path)
    _assert_model_error(tmp_path, "no tokenizer files in it")


def test_load_model_rejects_a_missing_tokenizer(tmp_path: Path) -> None:
    folder = _tiny_gpt2(tmp_path / "m", tokenizer=False)
    _assert_model_error(folder, "no tokenizer files in it")


def test_load_model_rejects_missing_weights(tmp_path: Path) -> None:
    folder = _tiny_gpt2(tmp_path / "m", weights=False)
    _assert_model_error(folder, "no .safetensors weights in it")  # checked before loading


# --- the training script -------------------------------------------------------------


def _train_quick(out: Path, seed: int = 0) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--seed", str(seed)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "val loss" in done.stdout
    assert "sample at T=0.2" in done.stdout
    return dict(json.loads((out / "training.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("quick") / "model"
    return out, _train_quick(out)


def test_quick_training_saves_a_loadable_model(quick_run: tuple[Path, dict[str, Any]]) -> None:
    out, rec = quick_run
    model, tokenizer = load_model(out)
    assert model.config.model_type == "gpt2"
    assert sum(p.numel() for p in model.parameters()) == rec["parameters"]
    assert rec["steps"] == rec["history"][-1]["step"] > 0
    assert rec["final_train_loss"] > 0
    assert rec["final_val_loss"] > 0
    # Training works: the loss falls well below uniform guessing, log(vocabulary).
    assert rec["final_val_loss"] < np.log(len(tokenizer)) - 0.5
    # No temporary folder is left behind, and the model is readable by everyone
    # (the script writes into a private mkdtemp folder first).
    assert not [p.name for p in out.parent.iterdir() if p.name != "model"]
    assert out.stat().st_mode & 0o555 == 0o555
    assert all(f.stat().st_mode & 0o444 == 0o444 for f in out.iterdir())


def test_quick_training_is_reproducible(
    quick_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    first_out, first = quick_run
    second = _train_quick(tmp_path / "again")
    assert second["history"] == first["history"]
    assert second["final_val_loss"] == first["final_val_loss"]

    def digest(folder: Path) -> str:
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    assert digest(tmp_path / "again") == digest(first_out)
    for name in ("tokenizer.json", "config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (first_out / name).read_bytes()


def test_quick_training_refuses_to_overwrite_the_shipped_model() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "--quick needs --out" in done.stderr


def test_embedded_model_loads_without_a_progress_bar_and_leaves_the_setting_alone() -> None:
    # The embedded model loads in milliseconds: transformers' "Loading weights" bar
    # is noise on stderr (the CLI and the explorer print it otherwise). A user's
    # model keeps the bar, so the global setting must be restored.
    code = (
        "import transformers.utils.logging as l\n"
        "from thermoscope.generation import load_model\n"
        "load_model()\n"
        "print(l.is_progress_bar_enabled())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "Loading weights" not in done.stderr
    assert done.stdout.strip() == "True"
