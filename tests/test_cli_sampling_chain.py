"""`thermoscope sample`: engine presets, the stage-by-stage trace and history-aware flags."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import special

from thermoscope.cli import main
from thermoscope.sampling.engines import ENGINE_PRESETS

LOGITS = "5,2.2,2,4.5,3,2.7"
Z = np.array([5, 2.2, 2, 4.5, 3, 2.7])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_preset_llama_cpp_samples_llama_cpps_default_chain(capsys):
    out = json.loads(run(capsys, "sample", "--logits", LOGITS, "--preset", "llama.cpp", "--json"))
    # llama.cpp's defaults written out: top-k 40 and min-p 0.05 keep all six here;
    # top-p 0.95 on the untempered distribution drops the least likely; then T 0.8.
    p = special.softmax(Z)
    order = np.argsort(-p)
    kept = order[: int(np.searchsorted(np.cumsum(p[order]), 0.95) + 1)]
    w = np.zeros_like(Z)
    w[kept] = np.exp(Z[kept] / 0.8)
    ref = w / w.sum()
    got = {row["index"]: row["prob"] for row in out["kept"]}
    assert sorted(got) == sorted(kept.tolist())
    np.testing.assert_allclose([got[i] for i in sorted(got)], ref[sorted(got)], rtol=1e-12)


def test_a_flag_overrides_the_presets_value(capsys):
    argv = ["sample", "--logits", LOGITS, "--preset", "llama.cpp", "-t", "0.2", "--json"]
    out = json.loads(run(capsys, *argv))
    assert "Temperature(temperature=0.2)" in out["sampler"]
    assert out["sampler"].index("MinP") < out["sampler"].index("Temperature")  # llama.cpp order


def test_trace_prints_each_stage_and_json_gives_it_whole(capsys):
    argv = ["sample", "--logits", LOGITS, "-t", "0.5", "--top-p", "0.8", "--trace", "-n", "100"]
    text = run(capsys, *argv, "--labels", "a,b,c,d,e,f")
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("stage"))
    assert [line.split()[0] for line in lines[at + 2 : at + 5]] == [
        "input",
        "Temperature(0.5)",
        "TopP(0.8)",
    ]
    out = json.loads(run(capsys, *argv, "--json"))
    stages = out["trace"]["stages"]
    assert [s["name"] for s in stages] == ["input", "temperature", "top_p"]
    assert stages[-1]["kept_ids"] == [row["index"] for row in out["kept"]]
    np.testing.assert_allclose(stages[0]["mass"], 1.0)


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--history", "0,x"], "`--history`"),
        (["--logit-bias", "2"], "`--logit-bias`"),
        (["--logit-bias", "a=1"], "`--logit-bias`"),
        (["--preset", "llama.cpp", "--top-k", "0"], "`--top-k`"),
    ],
)
def test_bad_chain_flags_are_one_line_and_exit_2(capsys, argv, names):
    assert main(["sample", "--logits", LOGITS, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert names in err


def test_every_preset_runs(capsys):
    for name in ENGINE_PRESETS:
        out = json.loads(run(capsys, "sample", "--logits", LOGITS, "--preset", name, "--json"))
        assert abs(sum(row["prob"] for row in out["kept"]) - 1.0) < 1e-12
