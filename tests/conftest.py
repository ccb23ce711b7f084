"""Test-wide settings: importable ``src/`` and deterministic hypothesis runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings

# Under xdist each worker is one process per core: torch's own thread pool in
# every worker would oversubscribe the cores (gradcheck runs 20x slower). Set
# before any test module imports torch.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

_SRC = Path(__file__).resolve().parents[1] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

# CI must give the same verdict on every run: hypothesis explores a fixed,
# seed-derived set of examples there. `HYPOTHESIS_PROFILE=explore` searches anew.
settings.register_profile("ci", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
