#!/usr/bin/env bash
# Install llama-cpp-python (the live llama.cpp oracle of tests/test_sampling_llama_cpp.py)
# into the project's virtualenv. It compiles llama.cpp from source: CPU only, no
# -march=native (the wheel must run on any x86-64 CI machine), no curl. About 25 minutes
# of wall time on 2 shared cores (10.5 min CPU), plus a 77 MB sdist download from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF" .venv/bin/pip install "llama-cpp-python==0.3.36"
.venv/bin/python -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
