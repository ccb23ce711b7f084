"""Run examples/temperature_tour.ipynb top to bottom and store it with its outputs.

Usage (from the repository root; ``make notebook`` runs it):

    .venv/bin/python scripts/execute_notebook.py [NOTEBOOK]

The kernel is python3 with this checkout's ``src`` first on ``PYTHONPATH``
and a temporary folder as working directory, as in tests/test_notebook.py, so
the stored outputs are those a fresh run gives. Volatile metadata (execution
timings) is dropped, so rerunning it changes only what really changed. A cell
that raises stops the run and leaves the stored notebook untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "temperature_tour.ipynb"
TIMEOUT_S = 600


def execute(path: Path, *, cwd: Path) -> Any:
    """The notebook at ``path`` executed in a fresh python3 kernel (an nbformat node)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    env = {
        # Jupyter's platformdirs opt-in, and runtime files kept out of the home folder.
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_RUNTIME_DIR": str(cwd / "runtime"),
        "IPYTHONDIR": str(cwd / "ipython"),
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=TIMEOUT_S,
            resources={"metadata": {"path": str(cwd)}},
            record_timing=False,
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    """Execute the notebook in place; return the exit status."""
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=NOTEBOOK)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="notebook-") as tmp:
        nb = execute(args.notebook, cwd=Path(tmp))
    nbformat.validate(nb)
    nbformat.write(nb, args.notebook)
    n_out = sum(len(c.get("outputs", [])) for c in nb.cells)
    print(f"executed {args.notebook}: {len(nb.cells)} cells, {n_out} outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
