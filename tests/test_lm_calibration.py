"""Next-token calibration of a causal LM (thermoscope.generation.lm_calibration).

References are direct float64 transcriptions of each metric's definition,
scipy's scalar minimiser for the temperature and ``relplot.smECE`` for smooth
ECE. The end-to-end cases use a real (if tiny) causal LM, a bigram table: its
next-token logits are known in closed form, so every metric can be recomputed
from the text alone.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from thermoscope.calibration import calibration_summary, expected_calibration_error  # noqa: E402
from thermoscope.generation.lm_calibration import (  # noqa: E402
    LMCalibration,
    _reduce,
    _Side,
    calibrate_language_model,
    read_corpus,
)

ALPHABET = "abcdefgh"


class BigramLM(torch.nn.Module):
    """A causal LM whose next-token logits depend on the current token only: ``table[token]``."""

    def __init__(self, table: Any, n_positions: int = 64) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table), requires_grad=False)
        self.config = SimpleNamespace(n_positions=n_positions, vocab_size=self.table.shape[1])

    @property
    def device(self) -> Any:
        return self.table.device

    def forward(self, input_ids: Any, attention_mask: Any = None) -> Any:
        return SimpleNamespace(logits=self.table[input_ids])


class CharTokenizer:
    """One token per letter of ALPHABET; no end-of-text token."""

    eos_token_id = None
    pad_token_id = 0

    def __call__(self, texts: list[str], **kwargs: Any) -> Any:
        return SimpleNamespace(input_ids=[[ALPHABET.index(c) for c in t] for t in texts])


def _table(seed: int = 0, scale: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((len(ALPHABET), len(ALPHABET))) * scale).astype(np.float32)


def _text(seed: int = 1, n: int = 40, temperature: float = 2.0) -> str:
    """A Markov chain drawn from ``softmax(_table() / temperature)``: the model is overconfident."""
    rng = np.random.default_rng(seed)
    logp = _log_softmax64(_table() / temperature)
    ids = [0]
    for _ in range(n - 1):
        ids.append(int(rng.choice(len(ALPHABET), p=np.exp(logp[ids[-1]]))))
    return "".join(ALPHABET[i] for i in ids)


def _pairs(text: str) -> tuple[np.ndarray, np.ndarray]:
    ids = [ALPHABET.index(c) for c in text]
    return np.array(ids[:-1]), np.array(ids[1:])


# ------------------------------------------------------------------ direct references


def _log_softmax64(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _ref_metrics(z: np.ndarray, y: np.ndarray, t: float, n_bins: int) -> dict[str, float]:
    """Every metric at temperature ``t``, from the definitions, in float64."""
    logp = _log_softmax64(z.astype(np.float64) / t)
    p = np.exp(logp)
    n = len(y)
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = ece2 = mce = 0.0
    for k in range(n_bins):
        last = k == n_bins - 1
        inb = (conf >= edges[k]) & ((conf <= edges[k + 1]) if last else (conf < edges[k + 1]))
        if inb.any():
            gap = abs(hit[inb].mean() - conf[inb].mean())
            ece += inb.sum() / n * gap
            ece2 += inb.sum() / n * gap**2
            mce = max(mce, gap)
    onehot = np.eye(z.shape[1])[y]
    cw = []
    for c in range(z.shape[1]):
        e = 0.0
        for k in range(n_bins):
            last = k == n_bins - 1
            pc = p[:, c]
            inb = (pc >= edges[k]) & ((pc <= edges[k + 1]) if last else (pc < edges[k + 1]))
            e += abs(onehot[inb, c].sum() - pc[inb].sum()) / n
        cw.append(e)
    nll = float(-logp[np.arange(n), y].mean())
    return {
        "ece": ece,
        "ece_l2": math.sqrt(ece2),
        "mce": mce,
        "nll": nll,
        "perplexity": math.exp(nll),
        "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
        "accuracy": float(hit.mean()),
        "classwise_ece": float(np.mean(cw)),
    }


def _ref_temperature(z: np.ndarray, y: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        logp = _log_softmax64(z.astype(np.float64) / math.exp(log_t))
        return float(-logp[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-12})
    return math.exp(res.x)


def _check(got: dict[str, Any], want: dict[str, float], tol: float = 2e-6) -> None:
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=tol), key


# ------------------------------------------------------------------ the reductions


@pytest.mark.parametrize("beta", [1.0, 0.6, 1.7])
def test_reductions_match_definitions(beta):
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((400, 12)) * 2.5).astype(np.float32)
    y = rng.integers(0, 12, 400)
    side = _Side(beta, 10, 12, True, "cpu")
    half = 150  # two batches: the sums must add up
    _reduce([side], torch.tensor(z[:half]), torch.from_numpy(y[:half]))
    _reduce([side], torch.tensor(z[half:]), torch.from_numpy(y[half:]))
    got = side.finish(None)
    _check(got.as_dict(), _ref_metrics(z, y, 1.0 / beta, 10))
    # And the library's in-memory metrics, a second reference.
    s = calibration_summary(z.astype(np.float64) * beta, y, n_bins=10, from_logits=True)
    assert got.summary.ece == pytest.approx(s.ece, abs=1e-6)
    assert got.summary.curve.count.tolist() == s.curve.count.tolist()
    cw = expected_calibration_error(
        z.astype(np.float64) * beta, y, n_bins=10, classwise=True, from_logits=True
    )
    assert got.classwise_ece == pytest.approx(cw, abs=1e-6)


def test_smooth_ece_is_relplot_on_confidence_and_correctness():
    relplot = pytest.importorskip("relplot")
    pytest.importorskip("thermoscope.calibration.smooth")
    from thermoscope.generation.lm_calibration import _smooth_ece

    rng = np.random.default_rng(5)
    z = (rng.standard_normal((500, 9)) * 2).astype(np.float32)
    y = rng.integers(0, 9, 500)
    smooth, note = _smooth_ece()
    assert note is None
    side = _Side(1.0, 15, 9, False, "cpu")
    _reduce([side], torch.tensor(z), torch.from_numpy(y))
    got = side.finish(smooth).smooth_ece
    p = np.exp(_log_softmax64(z))
    want = relplot.smECE(p.max(axis=1), (p.argmax(axis=1) == y).astype(float))
    assert got == pytest.approx(want, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    shift=st.floats(-50, 50, allow_nan=False),
    beta=st.floats(0.2, 5.0),
    seed=st.integers(0, 2**16),
)
def test_reductions_shift_invariant_and_in_range(shift, beta, seed):
    rng = np.random.default_rng(seed)
    z = torch.from_numpy((rng.standard_normal((30, 7)) * 4).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 7, 30))
    a, b = _Side(beta, 5, 7, True, "cpu"), _Side(beta, 5, 7, True, "cpu")
    _reduce([a], z + 0.0, y)
    _reduce([b], z + shift, y)
    da, db = a.finish(None).as_dict(), b.finish(None).as_dict()
    for key in ("ece", "mce", "classwise_ece", "accuracy"):
        assert 0.0 <= da[key] <= 1.0
        assert da[key] == pytest.approx(db[key], abs=2e-4)
    assert 0.0 <= da["brier"] <= 2.0
    assert da["nll"] == pytest.approx(db["nll"], rel=1e-4, abs=1e-4)


# ------------------------------------------------------------------ end to end


def test_bigram_end_to_end_matches_direct_computation():
    # Identical texts, one window each: the fit split and the evaluation split
    # then hold the same (context, next) pairs, so both are one text's pairs.
    table, text = _table(), _text()
    model = BigramLM(table)
    r = calibrate_language_model(
        [text] * 6,
        model=model,
        tokenizer=CharTokenizer(),
        n_bins=10,
        fit_fraction=0.5,
        progress=False,
    )
    ctx, y = _pairs(text)
    z = table[ctx]
    t = _ref_temperature(z, y)
    assert r.temperature == pytest.approx(t, rel=1e-6)
    assert r.fit.bound is None
    assert r.n_eval_tokens + r.n_fit_tokens == 6 * len(y)
    assert r.n_fit_tokens == 3 * len(y)  # fit_fraction 0.5 of whole windows
    _check(r.before.as_dict(), _ref_metrics(z, y, 1.0, 10))
    _check(r.after.as_dict(), _ref_metrics(z, y, r.temperature, 10))
    assert r.after.summary.nll <= r.before.summary.nll
    assert isinstance(r, LMCalibration)


def test_windows_share_one_token_so_each_is_scored_once():
    table, text = _table(), _text(n=50)
    model = BigramLM(table, n_positions=8)
    r = calibrate_language_model(
        [text, text], model=model, tokenizer=CharTokenizer(), window=8, progress=False
    )
    # 49 pairs per text, windows of 8 tokens score 7 each: 7 windows per text.
    assert r.n_fit_tokens + r.n_eval_tokens == 2 * 49
    assert r.n_fit_tokens % 7 == 0
    assert r.n_eval_tokens % 7 == 0


def test_max_tokens_caps_the_scored_tokens():
    model = BigramLM(_table())
    r = calibrate_language_model(
        [_text(n=60)] * 3,
        model=model,
        tokenizer=CharTokenizer(),
        window=16,
        max_tokens=50,
        progress=False,
    )
    assert r.n_fit_tokens + r.n_eval_tokens == 50


def test_max_fit_tokens_caps_the_fit_split():
    model = BigramLM(_table())
    r = calibrate_language_model(
        [_text(n=60)] * 4,
        model=model,
        tokenizer=CharTokenizer(),
        window=16,
        max_fit_tokens=20,
        progress=False,
    )
    # 4 texts of 59 scored tokens in windows of at most 15: the fit split is
    # whole windows holding at most a quarter of them (59), 20 of which are fitted on.
    assert r.n_fit_tokens == 20
    assert 20 <= 4 * 59 - r.n_eval_tokens <= 59


def test_seed_changes_the_split_and_is_reproducible():
    model, tok = BigramLM(_table()), CharTokenizer()
    texts = [_text(seed=s) for s in range(6)]
    a = calibrate_language_model(texts, model=model, tokenizer=tok, seed=1, progress=False)
    b = calibrate_language_model(texts, model=model, tokenizer=tok, seed=1, progress=False)
    c = calibrate_language_model(texts, model=model, tokenizer=tok, seed=2, progress=False)
    assert a.temperature == b.temperature
    assert a.before.as_dict() == b.before.as_dict()
    assert a.temperature != c.temperature


def test_bfloat16_model_computes_in_float32():
    table = _table()
    rounded = torch.from_numpy(table).to(torch.bfloat16)
    texts = [_text()] * 4
    low = calibrate_language_model(
        texts, model=BigramLM(rounded), tokenizer=CharTokenizer(), progress=False
    )
    full = calibrate_language_model(
        texts, model=BigramLM(rounded.float()), tokenizer=CharTokenizer(), progress=False
    )
    assert low.temperature == pytest.approx(full.temperature, rel=1e-9)
    assert low.after.as_dict() == pytest.approx(full.after.as_dict(), abs=1e-9)


def test_embedded_model_on_held_out_text():
    import json
    import sysconfig
    from pathlib import Path

    from thermoscope.models import embedded_model_path

    info = json.loads((embedded_model_path() / "training.json").read_text())
    path = Path(sysconfig.get_paths()["stdlib"]) / "fnmatch.py"
    if "fnmatch.py" not in info["data"]["val_file_names"] or not path.is_file():
        pytest.skip("fnmatch.py is not a held-out file of this Python")
    r = calibrate_language_model(read_corpus([path]), window=64, max_tokens=600, progress=False)
    assert r.n_fit_tokens + r.n_eval_tokens == 600
    assert r.fit.nll <= r.fit.nll_at_one  # the fit never worsens its own split
    assert r.before.summary.accuracy == r.after.summary.accuracy  # T keeps the arg-max
    assert r.after.perplexity == pytest.approx(math.exp(r.after.summary.nll))
    text = str(r)
    for label in ("ECE", "smooth ECE", "class-wise ECE", "perplexity", "Brier"):
        assert label in text


# ------------------------------------------------------------------ bad input


def _call(texts: Any = None, **kw: Any) -> Any:
    kw.setdefault("model", BigramLM(_table()))
    kw.setdefault("tokenizer", CharTokenizer())
    kw.setdefault("progress", False)
    return calibrate_language_model([_text()] * 4 if texts is None else texts, **kw)


@pytest.mark.parametrize(
    ("kw", "exc", "name"),
    [
        ({"texts": ["", "  "]}, ValueError, "`texts`"),
        ({"texts": [1, 2]}, TypeError, "`texts`"),
        ({"texts": ["ab"]}, ValueError, "`texts`"),  # one window only
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        ({"batch_size": 1.5}, TypeError, "`batch_size`"),
        ({"fit_fraction": 1.0}, ValueError, "`fit_fraction`"),
        ({"fit_fraction": 0.0}, ValueError, "`fit_fraction`"),
        ({"max_fit_tokens": 0}, ValueError, "`max_fit_tokens`"),
        ({"max_tokens": 1}, ValueError, "`max_tokens`"),
        ({"window": 1}, ValueError, "`window`"),
        ({"window": 65}, ValueError, "`window`"),
        ({"n_bins": 0}, ValueError, "`n_bins`"),
        ({"seed": -1}, ValueError, "`seed`"),
        ({"tokenizer": None}, ValueError, "`tokenizer`"),
    ],
)
def test_bad_arguments_name_themselves(kw, exc, name):
    with pytest.raises(exc, match=name):
        _call(**kw)


def test_bad_model_folder(tmp_path):
    with pytest.raises(ValueError, match="`model`"):
        calibrate_language_model(["x = 1\n"], model=tmp_path / "nope", progress=False)
    with pytest.raises(ValueError, match="`tokenizer` must be None"):
        calibrate_language_model(["x = 1\n"], model=tmp_path, tokenizer=CharTokenizer())


def test_read_corpus_refuses_bad_files(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("abc\n")
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"ab\x00cd")
    latin = tmp_path / "c.txt"
    latin.write_bytes(b"caf\xe9\n")
    empty = tmp_path / "d.txt"
    empty.write_text(" \n\n")
    assert read_corpus([good]) == ["abc\n"]
    cases = [
        ([tmp_path / "missing.txt"], "not found"),
        ([tmp_path], "folder"),
        ([binary], "binary"),
        ([latin], "UTF-8"),
        ([empty], "empty"),
        ([], "at least one"),
    ]
    for paths, why in cases:
        with pytest.raises(ValueError, match=f"^`--text` must .*{why}"):
            read_corpus(paths, "--text")
