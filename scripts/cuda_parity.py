"""Every sampler stage and the training losses on a CUDA tensor against numpy / CPU.

Run on a machine with a GPU (``PYTHONPATH=src python scripts/cuda_parity.py``).
For each stage alone and inside a chain it checks that a CUDA tensor comes
back on the GPU in its dtype, keeps the same tokens as numpy, gives the same
probabilities (1e-5) and draws the same tokens from the same seed (allowing
the rare draw whose uniform falls within float rounding of an interval edge);
then the contrastive losses and Gumbel-softmax forward and backward on CUDA
against CPU. Prints one line per check and exits 1 on any failure.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

from thermoscope import sampling as S

#: ``DEVICE=cpu`` dry-runs the script without a GPU.
DEVICE = torch.device(os.environ.get("DEVICE", "cuda"))


def stages() -> list[tuple[str, list[S.Warper], str]]:
    hist = "history"
    return [
        ("temperature", [S.Temperature(0.7)], ""),
        ("top-k + top-p + T", [S.Temperature(0.7), S.TopK(50), S.TopP(0.9)], ""),
        ("top-p + T", [S.Temperature(0.7), S.TopP(0.9)], ""),
        ("min-p", [S.MinP(0.05)], ""),
        ("typical", [S.Typical(0.9)], ""),
        ("epsilon", [S.Epsilon(0.0003)], ""),
        ("eta", [S.Eta(0.0009)], ""),
        ("top-h", [S.TopH(0.4)], ""),
        ("p-less", [S.PLess()], ""),
        ("top-n-sigma", [S.TopNSigma(1.0)], ""),
        ("entropy temperature", [S.EntropyTemperature(0.3, 1.3)], ""),
        ("repetition", [S.RepetitionPenalty(1.3), S.TopK(40)], hist),
        ("frequency+presence", [S.FrequencyPenalty(0.3), S.PresencePenalty(0.4)], hist),
        ("no-repeat-ngram", [S.NoRepeatNGram(2)], hist),
        ("logit bias", [S.LogitBias({3: -np.inf, 5: 2.0})], ""),
        ("sequence bias", [S.SequenceBias({(1, 2): -3.0, (7,): 1.5})], hist),
        ("DRY", [S.DRY(0.8, sequence_breakers=((11,),))], hist),
        ("XTC after top-k", [S.TopK(20), S.XTC(1.0, 0.05)], ""),
    ]


def main() -> int:
    if DEVICE.type == "cuda":
        print(torch.__version__, torch.cuda.get_device_name())
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((8, 20000)) * 2).astype(np.float32)
    h = rng.integers(0, 30, size=(8, 300))  # small ids: repeats, so penalties bite
    failures = 0
    for name, steps, needs in stages():
        s = S.Sampler(steps)
        kw_np = {"history": h} if needs else {}
        kw_cu = {"history": torch.from_numpy(h).to(DEVICE)} if needs else {}
        zc = torch.from_numpy(z).to(DEVICE)
        try:
            p_np = s.probs(z, seed=0, **kw_np)
            p_cu = s.probs(zc, seed=0, **kw_cu)
            ok_dev = p_cu.device.type == DEVICE.type and p_cu.dtype == torch.float32
            got = p_cu.cpu().numpy()
            same_set = bool(np.array_equal(got > 0, p_np > 0))
            close = float(np.abs(got - p_np).max())
            t_np = s.sample(z, n=256, seed=3, **kw_np)
            t_cu = s.sample(zc, n=256, seed=3, **kw_cu)
            differ = int((t_cu.cpu().numpy() != t_np).sum())
            bf = s.probs(zc.to(torch.bfloat16), seed=0, **kw_cu)
            ok_bf = bf.dtype == torch.bfloat16 and bf.device.type == DEVICE.type
            sync()
            t0 = time.perf_counter()
            for _ in range(10):
                s.sample(zc, seed=0, **kw_cu)
            sync()
            ms = (time.perf_counter() - t0) / 10 * 1e3
            ok = ok_dev and ok_bf and same_set and close < 1e-5 and differ <= 3
        except Exception as exc:  # report and go on: one line per stage
            ok, ms = False, float("nan")
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
        else:
            print(
                f"{'ok  ' if ok else 'FAIL'} {name}: same kept set {same_set}, max |dp| "
                f"{close:.2e}, draws differing {differ}/2048, bf16 {ok_bf}, "
                f"sample {ms:.2f} ms"
            )
        failures += not ok
    failures += training_checks()
    print("failures:", failures)
    return 1 if failures else 0


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def training_checks() -> int:
    try:
        from thermoscope.training import (
            LearnableTemperature,
            clip_loss,
            gumbel_softmax,
            info_nce_loss,
            nt_xent_loss,
        )
    except ImportError as exc:
        print(f"FAIL training import: {exc}")
        return 1
    failures = 0
    g = torch.Generator().manual_seed(0)
    a = torch.randn(256, 64, generator=g, dtype=torch.float64)
    b = torch.randn(256, 64, generator=g, dtype=torch.float64)
    for name, fn in [
        ("nt_xent", lambda x, y: nt_xent_loss(x, y, temperature=0.1)),
        ("info_nce", lambda x, y: info_nce_loss(x, y, temperature=0.1)),
        ("clip", lambda x, y: clip_loss(x, y, temperature=0.07)),
    ]:
        grads = []
        values = []
        for dev in ("cpu", DEVICE.type):
            # copy=True: a.to("cpu") would return `a` itself and make it a leaf that needs grad.
            x = a.to(dev, copy=True).requires_grad_(True)
            y = b.to(dev, copy=True).requires_grad_(True)
            loss = fn(x, y)
            loss.backward()
            values.append(float(loss.detach()))
            grads.append(x.grad.cpu())
        ok = abs(values[0] - values[1]) < 1e-9 and torch.allclose(grads[0], grads[1], atol=1e-9)
        print(f"{'ok  ' if ok else 'FAIL'} {name} on cuda: loss {values[1]:.6f} vs {values[0]:.6f}")
        failures += not ok
    t = LearnableTemperature(0.5).to(DEVICE)
    out = t(torch.ones(3, device=DEVICE))
    ok = out.device.type == DEVICE.type
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2], device=DEVICE))
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    ys = gumbel_softmax(logits.expand(100000, 3), 0.5, hard=True, generator=gen)
    freq = ys.mean(0).cpu().numpy()
    ok = ok and ys.device.type == DEVICE.type and np.abs(freq - [0.5, 0.3, 0.2]).max() < 0.01
    print(f"{'ok  ' if ok else 'FAIL'} learnable T and gumbel_softmax on cuda: freq {freq}")
    return failures + (not ok)


if __name__ == "__main__":
    sys.exit(main())
