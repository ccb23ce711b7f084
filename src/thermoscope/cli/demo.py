"""``thermoscope demo``: the main job, every section computed live on real data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thermoscope.cli._args import CommandParser, add_subcommand


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``demo`` subcommand."""
    p = add_subcommand(
        sub,
        "demo",
        help="the main job: every topic computed live, figures written to --out",
        description="Run every demo in turn: the theory tour (limits, entropy, free "
        "energy, symmetries, the seeds' worked examples recomputed, sampling checked "
        "against theory), then calibration, distillation, attention, exploration and "
        "recommendation on real or seeded data. Text goes to stdout and to OUT/demo.txt, "
        "figures to OUT/, and everything, figures embedded, to the self-contained page "
        "OUT/report.html with the command that reproduces each section.",
        examples="  thermoscope demo\n  thermoscope demo --out out/ --quick --seed 1\n",
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller runs, for a fast smoke test")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Run every demo with a progress bar on stderr; return the combined text."""
    from thermoscope._files import write_text_atomic
    from thermoscope.demos import DEMOS
    from thermoscope.report import ReportSection, build_report

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a folder, got the file {str(out)!r}.")
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    parts = []
    progress = _progress(len(DEMOS) + 1)
    for demo in DEMOS:
        progress.set_description(demo.title)
        before = _pngs(out)
        text = demo.load()(out, args.seed, args.quick)
        after = _pngs(out)
        # New or rewritten files: a rerun into the same folder still finds its figures.
        figures = tuple(out / name for name in sorted(after) if before.get(name) != after[name])
        parts.append(
            ReportSection(demo.title, text, figures, demo.reproduce(args.seed, args.quick))
        )
        sections.append(f"# {demo.title}\n\n{text}")
        progress.update(1)
    progress.set_description("report")
    page = build_report(parts, out)
    progress.update(1)
    progress.close()
    report = "\n\n".join(sections)
    write_text_atomic(out / "demo.txt", report + "\n")
    return f"{report}\n\nwritten: {out / 'demo.txt'} and the figures in {out}/\nreport: {page}"


def _pngs(folder: Path) -> dict[str, tuple[int, int]]:
    """PNG name -> (modification time in ns, size), to tell which files a demo wrote."""
    found = {}
    for path in folder.glob("*.png"):
        st = path.stat()
        found[path.name] = (st.st_mtime_ns, st.st_size)
    return found


def _progress(total: int) -> _Bar:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is an extra; without it, no bar
        return _Bar()
    bar: _Bar = tqdm(total=total, file=sys.stderr, unit="demo", leave=False)
    return bar


class _Bar:
    """The part of tqdm's interface used here, doing nothing."""

    def set_description(self, text: str) -> None:
        """Ignore the stage name."""

    def update(self, n: int) -> None:
        """Ignore progress."""

    def close(self) -> None:
        """Nothing to close."""
