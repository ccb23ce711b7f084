#!/usr/bin/env bash
# The GPU checks, for a machine with CUDA (no test needs one; CI has none):
# every sampler stage and the training losses on CUDA against numpy / CPU, the
# CUDA cases of the test-suite, where a call's time goes (kernels, syncs) and the
# sampling benchmark on the GPU.
# Results go to $OUT (or ./device-out).
set -o pipefail
OUT=${OUT:-device-out}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$OUT/device.txt"
python3 scripts/cuda_parity.py 2>&1 | tee "$OUT/parity.txt"
python3 -m pytest -q -o addopts="" -p no:cacheprovider -k "cuda or CUDA" \
  tests/test_sampling_counter.py tests/test_sampling_sampler.py tests/test_core_backends.py \
  tests/test_calibration_backends.py tests/test_generation_processor.py \
  tests/test_generation_mirostat.py tests/test_backend_rl_distill_attention.py \
  tests/test_sampling_penalties.py tests/test_sampling_dry.py tests/test_sampling_xtc.py \
  tests/test_sampling_entropy_cuts.py tests/test_sampling_adaptive_p.py tests/test_training_*.py \
  2>&1 | tee "$OUT/pytest.txt"
python3 scripts/cuda_profile.py 2>&1 | tee "$OUT/profile.txt"
python3 bench/sampling.py --device cuda --shape 32x128256 --repeats 20 --dist "${DIST:-both}" 2>&1 | tee "$OUT/bench.txt"
