"""``thermoscope demo [NAME]``: every demo into one report, or one demo on its own."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from thermoscope.cli._args import MAX_SEED, CommandParser, add_subcommand, integer_in
from thermoscope.demos import DEMOS


def _listing() -> str:
    width = max(len(name) for name in DEMOS)
    return "\n".join(f"  {name:<{width}}  {demo.summary}" for name, demo in DEMOS.items())


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``demo`` subcommand."""
    p = add_subcommand(
        sub,
        "demo",
        help="the main job: every demo computed live into OUT/report.html, or one by NAME",
        description=textwrap.fill(
            "Without NAME, run every demo in turn (the order below): text goes to stdout "
            "and to OUT/demo.txt, figures to OUT/, and everything, figures embedded, to the "
            "self-contained page OUT/report.html with the command that reproduces each "
            "section. With NAME, run that demo alone (its text to stdout, its files to OUT/).",
            width=88,
        )
        + f"\n\ndemos:\n{_listing()}",
        examples="  thermoscope demo\n"
        "  thermoscope demo --out out/ --quick --seed 1\n"
        "  thermoscope demo calibration --quick\n"
        "  thermoscope demo --list\n",
    )
    p.add_argument(
        "name",
        nargs="?",
        choices=list(DEMOS),
        metavar="NAME",
        help=f"run only this demo: {', '.join(DEMOS)}",
    )
    p.add_argument("--list", action="store_true", help="list the demos and exit")
    p.add_argument(
        "--out", type=Path, default=Path("out"), help="folder for the outputs (default: out)"
    )
    p.add_argument(
        "--seed",
        type=integer_in("--seed", 0, MAX_SEED),
        default=0,
        help="random seed >= 0 (default 0)",
    )
    p.add_argument("--quick", action="store_true", help="smaller runs, for a fast smoke test")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """List the demos, run one, or run all of them into the report; return the text."""
    from thermoscope._files import check_writable_folder
    from thermoscope._validation import check_seed
    from thermoscope.demos._output import prepare_out_dir

    if args.list:
        return _listing()
    seed = check_seed(args.seed, "--seed")
    out = prepare_out_dir(args.out, name="--out")
    assert out is not None  # --out always has a value
    check_writable_folder(out, "--out")  # an existing read-only folder fails now, not later
    if args.name is not None:
        return DEMOS[args.name].load()(out, seed=seed, quick=args.quick)
    return _run_all(out, seed=seed, quick=args.quick)


def _run_all(out: Path, *, seed: int, quick: bool) -> str:
    """Every demo with a progress bar on stderr, then demo.txt and report.html."""
    from thermoscope._files import write_text_atomic
    from thermoscope._progress import progress_bar
    from thermoscope.report import ReportSection, build_report

    sections = []
    parts = []
    bar = progress_bar(len(DEMOS) + 1, desc="demo", unit="demo")
    for demo in DEMOS.values():
        bar.set_description(demo.title)
        before = _pngs(out)
        text = demo.load()(out, seed=seed, quick=quick)
        after = _pngs(out)
        # New or rewritten files: a rerun into the same folder still finds its figures.
        figures = tuple(out / name for name in sorted(after) if before.get(name) != after[name])
        command = demo.reproduce(seed=seed, quick=quick)
        sections.append(ReportSection(demo.title, text, figures, command))
        parts.append(f"# {demo.title}\n\n{text}")
        bar.update(1)
    bar.set_description("report")
    page = build_report(sections, out)
    bar.update(1)
    bar.close()
    report = "\n\n".join(parts)
    write_text_atomic(out / "demo.txt", report + "\n")
    return f"{report}\n\nwritten: {out / 'demo.txt'} and the figures in {out}/\nreport: {page}"


def _pngs(folder: Path) -> dict[str, tuple[int, int]]:
    """PNG name -> (modification time in ns, size), to tell which files a demo wrote."""
    found = {}
    for path in folder.glob("*.png"):
        st = path.stat()
        found[path.name] = (st.st_mtime_ns, st.st_size)
    return found
