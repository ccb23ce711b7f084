"""The page's JavaScript arithmetic (static/sampling.js) against `summarize_sampling`, in Node.

Each test runs ``node`` once: a small driver reads every case from stdin as
JSON and writes every result back. JSON has no -Infinity, so a masked logit
travels as ``null`` both ways. Without ``node`` on PATH the tests fail,
unless ``THERMOSCOPE_ALLOW_NO_NODE=1`` (then they are skipped).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import thermoscope.explorer
from thermoscope.explorer import EXAMPLES
from thermoscope.sampling import summarize_sampling

SAMPLING_JS = Path(thermoscope.explorer.__file__).with_name("static") / "sampling.js"

DRIVER = r"""
const M = require(process.argv[1]);
const fromJson = (xs) => xs.map((v) => (v === null ? -Infinity : v));
const toJson = (xs) => Array.from(xs, (v) => (v === -Infinity ? null : v));
let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { text += chunk; });
process.stdin.on("end", () => {
  const input = JSON.parse(text);
  const out = { exports: Object.keys(M).sort(), summaries: [], parsed: [] };
  for (const c of input.cases || []) {
    const s = M.summarize(fromJson(c.logits), {
      temperature: c.temperature, topK: c.topK, topP: c.topP, minP: c.minP,
    });
    out.summaries.push({
      tempered: toJson(s.tempered), probabilities: toJson(s.probabilities),
      kept: Array.from(s.kept), entropy: s.entropy, nucleusMass: s.nucleusMass,
      keptCount: s.keptCount, maxProbability: s.maxProbability,
    });
  }
  for (const p of input.parse || []) {
    try {
      out.parsed.push({ ok: toJson(M.parseLogits(p.text, p.maxCount)) });
    } catch (e) {
      out.parsed.push({ error: String(e.message) });
    }
  }
  process.stdout.write(JSON.stringify(out));
});
"""


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        if os.environ.get("THERMOSCOPE_ALLOW_NO_NODE") == "1":
            pytest.skip("node is not on PATH (THERMOSCOPE_ALLOW_NO_NODE=1)")
        pytest.fail(
            "node is not on PATH: the explorer's JavaScript cannot be checked. Install Node.js, "
            "or set THERMOSCOPE_ALLOW_NO_NODE=1 to skip these tests."
        )
    return path


def run_node(node: str, payload: dict[str, Any]) -> dict[str, Any]:
    # The timeout only stops a hung process; nothing is asserted about time.
    done = subprocess.run(
        [node, "-e", DRIVER, str(SAMPLING_JS)],
        input=json.dumps(payload, allow_nan=False),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def as_json(z: np.ndarray) -> list[float | None]:
    return [None if v == -np.inf else float(v) for v in z]


def random_cases(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        vocab = int(rng.integers(1, 60))
        z = rng.standard_normal(vocab) * float(rng.choice([0.3, 1.0, 3.0, 10.0]))
        kind = i % 3
        if kind == 1:
            z = np.round(z, int(rng.integers(0, 2)))  # ties
        elif kind == 2:
            z[rng.random(vocab) < 0.3] = -np.inf
            if not np.isfinite(z).any():
                z[int(rng.integers(vocab))] = float(rng.standard_normal())
        t_kind = rng.integers(0, 5)
        if t_kind == 0:
            t = 0.0
        elif t_kind == 1:
            t = float(rng.choice([1e-3, 1e-310]))  # 1e-310: z / T overflows, shifted first
        elif t_kind == 2:
            t = 1e3
        elif t_kind == 3:
            t = 1.0
        else:
            t = float(rng.uniform(0.1, 5.0))
        top_k = int(rng.integers(0, vocab + 3)) if rng.random() < 0.6 else 0
        top_p = 1.0 - float(rng.random()) if rng.random() < 0.6 else 1.0  # (0, 1]
        min_p = float(rng.choice([0.0, 1.0, rng.random(), rng.random() * 0.2]))
        cases.append({"logits": z, "temperature": t, "topK": top_k, "topP": top_p, "minP": min_p})
    return cases


def example_cases() -> list[dict[str, Any]]:
    settings = [
        (1.0, 0, 1.0, 0.0),
        (0.0, 0, 1.0, 0.0),
        (0.7, 0, 0.9, 0.0),
        (1.3, 2, 1.0, 0.0),
        (0.5, 0, 1.0, 0.1),
        (2.0, 10, 0.8, 0.05),
        (1e-3, 0, 0.5, 0.0),
        (1e3, 3, 0.95, 0.5),
    ]
    return [
        {
            "logits": np.array(p.logits),
            "temperature": t,
            "topK": k,
            "topP": tp,
            "minP": mp,
        }
        for p in EXAMPLES
        for t, k, tp, mp in settings
    ]


def close(a: Any, b: Any, tol: float = 1e-9) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), 0, tol))


def test_summarize_matches_python(node: str) -> None:
    cases = random_cases(400, seed=1234) + example_cases()
    payload = {"cases": [{**c, "logits": as_json(c["logits"])} for c in cases]}
    out = run_node(node, payload)
    assert len(out["summaries"]) == len(cases)
    problems = []
    for i, (case, js) in enumerate(zip(cases, out["summaries"], strict=True)):
        py = summarize_sampling(
            case["logits"],
            temperature=case["temperature"],
            top_k=case["topK"],
            top_p=case["topP"],
            min_p=case["minP"],
        )
        checks = {
            "kept": js["kept"] == py.kept.tolist(),
            "keptCount": js["keptCount"] == py.kept_count,
            "tempered": close(js["tempered"], py.tempered),
            "probabilities": close(js["probabilities"], py.probabilities),
            "entropy": close(js["entropy"], py.entropy),
            "nucleusMass": close(js["nucleusMass"], py.nucleus_mass),
            "maxProbability": close(js["maxProbability"], py.max_probability),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            setting = {k: v for k, v in case.items() if k != "logits"}
            problems.append(f"case {i} {setting}: {bad}")
    assert not problems, "\n".join(problems[:10])


def test_module_exports(node: str) -> None:
    out = run_node(node, {})
    assert set(out["exports"]) >= {
        "summarize",
        "parseLogits",
        "scale",
        "topK",
        "topP",
        "minP",
        "softmax",
        "entropy",
    }


def test_parse_logits(node: str) -> None:
    good = [
        ("2, 1, 0.5", [2.0, 1.0, 0.5]),
        ("2 1 -inf", [2.0, 1.0, None]),
        ("  3;4\n5\t-Infinity ", [3.0, 4.0, 5.0, None]),
        ("-1e3,2.5e-1,,0", [-1000.0, 0.25, 0.0]),
        ("-INF 7", [None, 7.0]),
    ]
    bad = [
        ("", "`logits`"),
        (" , ", "`logits`"),
        ("1, abc", "'abc'"),
        ("1, inf", "`logits`"),
        ("1, NaN", "`logits`"),
        ("-inf -inf", "`logits`"),
        ("1 2 3 4 5", "at most 4"),
    ]
    payload = {
        "parse": [{"text": text, "maxCount": 4} for text, _ in good]
        + [{"text": text, "maxCount": 4} for text, _ in bad]
    }
    out = run_node(node, payload)["parsed"]
    for (text, expected), result in zip(good, out[: len(good)], strict=True):
        assert result == {"ok": expected}, text
    for (text, needle), result in zip(bad, out[len(good) :], strict=True):
        assert "error" in result, text
        assert "`logits`" in result["error"], text
        assert needle in result["error"], text
