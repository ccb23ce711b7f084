"""Train thermoscope's embedded language model: a tiny GPT-2 on the Python standard library.

No model weights can be downloaded at run time, so thermoscope ships its own
small causal language model, trained by this script on text every machine has:
the source files of the Python standard library that runs the script.

    python scripts/train_tiny_lm.py                 # the shipped model (~10 min, 1 core)
    python scripts/train_tiny_lm.py --quick --out /tmp/tiny   # a smoke run in seconds

What it does, in order, all deterministic for a given seed and machine:

1. Lists ``sysconfig.get_paths()["stdlib"]/**/*.py`` in sorted order, without
   tests, site-packages, the codec tables (``encodings``), ``pydoc_data`` and
   the machine-specific ``_sysconfigdata*``; a file goes to the validation
   split when the SHA-256 of its relative path falls in the first
   ``VALIDATION_PERCENT`` of the hash range (a split by file, stable when
   files are added or removed).
2. Trains a byte-level BPE tokenizer (the ``tokenizers`` library, GPT-2's
   pre-tokenizer and ``<|endoftext|>`` special token) on the training files.
3. Cuts the training token stream (files joined by ``<|endoftext|>``) into
   blocks of ``n_positions`` tokens and visits them in a seeded random order.
4. Trains ``transformers.GPT2LMHeadModel`` with AdamW, a linear warm-up and a
   cosine decay, printing training and validation loss (nats per token).
5. Saves model, tokenizer, generation config and ``training.json`` with
   ``save_pretrained`` into ``--out`` (replaced as a whole, never half-written),
   then prints samples at T = 0.2 and T = 1.0.

Bit-for-bit reproducibility holds on one machine with the same thread count
(``--threads``, default 1); other CPUs or library versions may round differently, and
another Python version has other standard library files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "thermoscope" / "models" / "tiny-python-gpt2"

EOS = "<|endoftext|>"
# No trailing space: "def " ends in a lone " " token, which in training text only
# precedes another space, so GPT-2-style tokenizers derail after it.
SAMPLE_PROMPT = "class Foo:\n    def"
VALIDATION_PERCENT = 5
# Folders that are not ordinary library code: tests, third-party packages,
# generated codec tables and the pydoc help text (one 750 kB string).
EXCLUDED_PARTS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__",
     "encodings", "pydoc_data"}
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Every knob of one training run (recorded in ``training.json``)."""

    vocab_size: int = 4096
    n_positions: int = 256
    n_embd: int = 160
    n_layer: int = 4
    n_head: int = 5
    batch_size: int = 8
    steps: int = 1200
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_blocks: int = 48
    max_train_files: int | None = None
    max_val_files: int | None = None


QUICK = Settings(
    vocab_size=384,
    n_positions=64,
    n_embd=32,
    n_layer=1,
    n_head=2,
    batch_size=4,
    steps=30,
    learning_rate=3e-3,
    warmup_steps=5,
    eval_every=10,
    eval_blocks=8,
    max_train_files=12,
    max_val_files=2,
)


def stdlib_files(root: Path) -> tuple[list[Path], list[Path]]:
    """Sorted (train, validation) lists of the standard library's source files."""
    train: list[Path] = []
    val: list[Path] = []
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root)
        if EXCLUDED_PARTS.intersection(rel.parts[:-1]) or rel.name.startswith("_sysconfigdata"):
            continue
        if rel.parts[0].startswith("config-") or not path.is_file():
            continue
        digest = hashlib.sha256(rel.as_posix().encode("utf-8")).digest()
        (val if int.from_bytes(digest[:8], "big") % 100 < VALIDATION_PERCENT else train).append(
            path
        )
    return train, val


def read_texts(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The UTF-8 files among ``paths`` and their text (undecodable files are skipped)."""
    kept: list[Path] = []
    texts: list[str] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip():
            kept.append(path)
            texts.append(text)
    return kept, texts


def train_tokenizer(texts: list[str], vocab_size: int, n_positions: int) -> Any:
    """A byte-level BPE tokenizer (GPT-2's scheme) trained on ``texts``, as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
        # Decoding must give back the exact source: no space clean-up around punctuation.
        clean_up_tokenization_spaces=False,
        model_max_length=n_positions,
    )


def token_stream(tokenizer: Any, texts: list[str]) -> np.ndarray:
    """All files' token ids, each file followed by ``<|endoftext|>``."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer.backend_tokenizer.encode_batch(texts):
        ids.extend(enc.ids)
        ids.append(eos)
    return np.asarray(ids, dtype=np.int64)


def blocks(stream: np.ndarray, length: int) -> np.ndarray:
    """Non-overlapping rows of ``length`` consecutive tokens (the ragged tail is dropped)."""
    n = len(stream) // length
    return stream[: n * length].reshape(n, length)


def learning_rate(step: int, s: Settings) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to ``min_lr_ratio`` of it."""
    if step < s.warmup_steps:
        return s.learning_rate * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return s.learning_rate * (s.min_lr_ratio + (1.0 - s.min_lr_ratio) * cosine)


def mean_loss(model: Any, rows: Any, batch_size: int) -> float:
    """Mean next-token cross-entropy (nats per predicted token) over ``rows``."""
    import torch

    total = 0.0
    count = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            loss = model(input_ids=batch, labels=batch).loss
            n = batch.shape[0] * (batch.shape[1] - 1)
            total += float(loss) * n
            count += n
    model.train()
    return total / count


def sample(model: Any, tokenizer: Any, prompt: str, temperature: float, seed: int) -> str:
    """One continuation of ``prompt`` sampled at ``temperature`` (seeded)."""
    import torch

    torch.manual_seed(seed)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            # Never past the context: the --quick model has only 64 positions.
            max_new_tokens=min(60, model.config.n_positions - ids.shape[1]),
            pad_token_id=tokenizer.eos_token_id,
        )
    return str(tokenizer.decode(out[0], skip_special_tokens=False))


def save_replacing(out: Path, write: Any) -> None:
    """Call ``write(folder)`` on a fresh sibling of ``out``, then swap it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    try:
        write(fresh)
        # mkdtemp makes a private folder; the model is package data, readable by all.
        fresh.chmod(0o755)
        for file in fresh.rglob("*"):
            file.chmod(0o755 if file.is_dir() else 0o644)
        if out.exists():
            out.rename(old)
        fresh.rename(out)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        if old.exists() and not out.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def folder_bytes(folder: Path) -> int:
    """Total size of the files in ``folder``."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def versions() -> dict[str, str]:
    """Versions of the libraries that shape the result."""
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def train(s: Settings, out: Path, seed: int, threads: int) -> dict[str, Any]:
    """Run the whole pipeline; return the ``training.json`` record."""
    import torch
    import transformers
    from tqdm.auto import tqdm
    from transformers import GPT2Config, GPT2LMHeadModel

    started = time.perf_counter()
    cpu_started = time.process_time()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)

    root = Path(sysconfig.get_paths()["stdlib"])
    train_paths, val_paths = stdlib_files(root)
    train_paths, train_texts = read_texts(train_paths[: s.max_train_files])
    val_paths, val_texts = read_texts(val_paths[: s.max_val_files])
    print(
        f"data: {len(train_paths)} training and {len(val_paths)} validation files from {root}",
        flush=True,
    )

    tokenizer = train_tokenizer(train_texts, s.vocab_size, s.n_positions)
    train_rows = torch.from_numpy(blocks(token_stream(tokenizer, train_texts), s.n_positions))
    val_rows = torch.from_numpy(blocks(token_stream(tokenizer, val_texts), s.n_positions))
    # A fixed, evenly spaced subset for the running validation loss; the final
    # number uses every validation block.
    picks = np.linspace(0, len(val_rows) - 1, min(s.eval_blocks, len(val_rows))).round()
    val_probe = val_rows[torch.from_numpy(picks.astype(np.int64))]
    print(
        f"tokens: {train_rows.numel():,} training, {val_rows.numel():,} validation "
        f"(vocabulary {len(tokenizer)}, {train_rows.shape[0]:,} blocks of {s.n_positions})",
        flush=True,
    )

    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=s.n_positions,
        n_embd=s.n_embd,
        n_layer=s.n_layer,
        n_head=s.n_head,
        # Under one epoch of data: nothing to regularise, and no dropout keeps runs exact.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = eos
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: GPT-2, {n_params:,} parameters ({s.n_layer} layers, {s.n_embd} wide)")

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": s.weight_decay},
        {"params": no_decay},
    ]
    optimizer = torch.optim.AdamW(
        groups,
        lr=s.learning_rate,
        betas=(0.9, 0.95),
        weight_decay=0.0,
    )
    order = torch.Generator().manual_seed(seed)
    queue = torch.randperm(len(train_rows), generator=order)
    cursor = 0
    history: list[dict[str, float]] = []
    running: list[float] = []
    model.train()
    bar = tqdm(range(s.steps), desc="training", unit="step", file=sys.stderr, disable=None)
    for step in bar:
        if cursor + s.batch_size > len(queue):
            queue = torch.randperm(len(train_rows), generator=order)
            cursor = 0
        batch = train_rows[queue[cursor : cursor + s.batch_size]]
        cursor += s.batch_size
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, s)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        optimizer.step()
        running.append(loss.item())
        bar.set_postfix(loss=f"{running[-1]:.3f}")
        if (step + 1) % s.eval_every == 0 or step + 1 == s.steps:
            point = {
                "step": step + 1,
                "train_loss": float(np.mean(running)),
                "val_loss": mean_loss(model, val_probe, 2 * s.batch_size),
            }
            history.append(point)
            running = []
            tqdm.write(
                f"step {point['step']:5d}  train loss {point['train_loss']:.4f}  "
                f"val loss {point['val_loss']:.4f}  lr {learning_rate(step, s):.2e}",
                file=sys.stdout,
            )
    bar.close()
    final_val = mean_loss(model, val_rows, 2 * s.batch_size)
    model.eval()

    record: dict[str, Any] = {
        "seed": seed,
        "steps": s.steps,
        "threads": threads,
        "settings": asdict(s),
        "data": {
            "source": "Python standard library sources (sysconfig stdlib path)",
            "train_files": len(train_paths),
            "val_files": len(val_paths),
            "val_file_names": [p.relative_to(root).as_posix() for p in val_paths],
            "train_tokens": int(train_rows.numel()),
            "val_tokens": int(val_rows.numel()),
            "tokens_seen": s.steps * s.batch_size * s.n_positions,
        },
        "parameters": n_params,
        "final_train_loss": history[-1]["train_loss"],
        "final_val_loss": final_val,
        "history": history,
        "versions": versions(),
    }

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        # transformers 5 writes its own class name, which transformers 4 cannot
        # resolve; "PreTrainedTokenizerFast" loads tokenizer.json in both.
        tok_config = folder / "tokenizer_config.json"
        entries = json.loads(tok_config.read_text(encoding="utf-8"))
        entries["tokenizer_class"] = "PreTrainedTokenizerFast"
        tok_config.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        record["size_bytes_without_training_json"] = folder_bytes(folder)
        record["wall_time_s"] = round(time.perf_counter() - started, 1)
        record["cpu_time_s"] = round(time.process_time() - cpu_started, 1)
        text = json.dumps(record, indent=2) + "\n"
        (folder / "training.json").write_text(text, encoding="utf-8")

    save_replacing(out, write)
    print(
        f"final: train loss {record['final_train_loss']:.4f}, validation loss {final_val:.4f} "
        f"nats/token; {folder_bytes(out) / 1e6:.2f} MB in {out}; "
        f"{record['wall_time_s']:.0f} s wall, {record['cpu_time_s']:.0f} s CPU"
    )
    for temperature in (0.2, 1.0):
        text = sample(model, tokenizer, SAMPLE_PROMPT, temperature, seed)
        print(f"\n--- sample at T={temperature:g}, prompt {SAMPLE_PROMPT!r} ---\n{text}")
    return record


def main(argv: list[str] | None = None) -> int:
    """Parse the options and train."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output model folder")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of init and data order")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        # One thread: on a shared machine, two OpenMP threads that wait for each
        # other ran 4x slower than one in our measurements, and one thread
        # never changes the summation order between machines' core counts.
        help="torch CPU threads (default 1)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (seconds)")
    args = parser.parse_args(argv)
    if args.quick and args.out == DEFAULT_OUT:
        parser.error("--quick needs --out: it must not replace the shipped model")
    settings = QUICK if args.quick else Settings()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        settings = Settings(**{**asdict(settings), "steps": args.steps})
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    train(settings, args.out, args.seed, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
