"""``thermoscope explore``: the local web explorer (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import socket
import sys

from thermoscope.cli._args import CommandParser, add_subcommand
from thermoscope.cli.generate import add_model_argument

EXAMPLES = """\
  thermoscope explore                      # http://127.0.0.1:8765 with the embedded model
  thermoscope explore --port 9000 --model path/to/gpt2
  thermoscope explore --no-model           # logits mode only (no torch / transformers needed)
  thermoscope explore --export page.html   # one self-contained file, logits mode, no server
"""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`port` must be an integer, got {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"`port` must be in 1..65535, got {value}")
    return value


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``explore`` subcommand.

    Examples
    --------
    >>> from thermoscope.cli._args import CommandParser
    >>> sub = CommandParser(prog="thermoscope").add_subparsers(parser_class=CommandParser)
    >>> register(sub)
    >>> args = sub.choices["explore"].parse_args(["--no-model", "--port", "9000"])
    >>> args.host, args.port, args.no_model, args.export
    ('127.0.0.1', 9000, True, None)
    """
    p = add_subcommand(
        sub,
        "explore",
        help="a local web page with live temperature, top-k, top-p and min-p sliders",
        description="Serve the explorer on http://HOST:PORT until Ctrl-C. Logits mode: type "
        "logits (or pick one of the seeds' examples) and watch the bars, the kept tokens, the "
        "entropy and the nucleus mass follow the sliders. Model mode: type a prompt to see the "
        "model's next-token distribution and sample continuations. The page's state is in its "
        "URL, so a view can be shared. --export writes the page as one HTML file that works "
        "from disk with no server (logits mode).",
        examples=EXAMPLES,
    )
    add_model_argument(p)
    p.add_argument(
        "--no-model", action="store_true", help="serve without a language model (logits mode only)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: only this machine can connect)",
    )
    p.add_argument("--port", type=_port, default=8765, help="port to listen on (default 8765)")
    p.add_argument(
        "--export",
        metavar="PATH",
        default=None,
        help="write the page as one self-contained HTML file (logits mode, no server) and exit",
    )
    p.set_defaults(run=run)


def _check_free(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"`host` must be an address of this machine, got {host!r}.") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            raise ValueError(
                f"`port` {port} cannot be used on {host}: {exc.strerror or exc}"
            ) from None


def _serving_hosts(host: str) -> list[str]:
    """The Host headers accepted when serving on ``host``: loopback and this machine's names.

    A wildcard bind (``0.0.0.0``, ``::``) answers on every address of the
    machine, so its host name and the addresses that name resolves to, plus
    the address of the default route, are accepted too; the warning lists
    them, so what is reachable and what is allowed agree.

    Examples
    --------
    >>> _serving_hosts("192.0.2.7")[-1]
    '192.0.2.7'
    """
    from thermoscope.explorer.middleware import LOOPBACK_HOSTS

    names = [host if ":" not in host else f"[{host}]"]
    if host in ("0.0.0.0", "::"):
        names.append(socket.gethostname())
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
            names += [str(info[4][0]) for info in infos]
        except OSError:
            pass  # a host name that does not resolve: its addresses are simply not added
        try:
            # connect() on UDP sends nothing: it only picks the outgoing address.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("192.0.2.1", 9))
                names.append(str(probe.getsockname()[0]))
        except OSError:
            pass  # no route: loopback and the host name remain
    out = list(LOOPBACK_HOSTS)
    for name in names:
        shown = f"[{name}]" if ":" in name and not name.startswith("[") else name
        if shown not in out:
            out.append(shown)
    return out


def _export(args: argparse.Namespace) -> str:
    """Write the static page; a model option makes no sense there and is refused.

    Examples
    --------
    >>> _export(argparse.Namespace(export="page.html", model="gpt2"))
    Traceback (most recent call last):
    ...
    ValueError: `model` cannot be given with --export: the saved page has the logits mode only.
    """
    from pathlib import Path

    from thermoscope.explorer.export import write_static_page

    if args.model is not None:
        raise ValueError(
            "`model` cannot be given with --export: the saved page has the logits mode only."
        )
    target = Path(args.export)
    if target.is_dir():
        raise ValueError(f"`--export` must be a file path, got the directory {str(target)!r}.")
    if not target.parent.is_dir():
        raise ValueError(f"`--export` must be in an existing directory, got {str(target)!r}.")
    out = write_static_page(target)
    return f"wrote {out} (open it in a browser: the logits mode works with no server)"


def run(args: argparse.Namespace) -> str:
    """Load the model, check the address and serve until interrupted.

    Examples
    --------
    >>> args = argparse.Namespace(
    ...     no_model=True, model="gpt2", host="127.0.0.1", port=8765, export=None
    ... )
    >>> run(args)
    Traceback (most recent call last):
    ...
    ValueError: `model` cannot be given with --no-model.
    """
    from thermoscope.explorer import create_app, serve
    from thermoscope.explorer.backend import ModelBackend
    from thermoscope.explorer.middleware import LOOPBACK_HOSTS

    if args.no_model and args.model is not None:
        raise ValueError("`model` cannot be given with --no-model.")
    if args.export is not None:
        return _export(args)
    _check_free(args.host, args.port)
    backend = None
    if not args.no_model:
        backend = ModelBackend(args.model)
        try:
            backend.load()  # a bad --model is a one-line error now, not a 503 later
        except ModuleNotFoundError as exc:
            raise ValueError(
                f"`model` needs {exc.name} for the model mode: pip install 'thermoscope[hf]', "
                "or start the explorer with --no-model."
            ) from None
    loopback = args.host in LOOPBACK_HOSTS
    hosts = list(LOOPBACK_HOSTS) if loopback else _serving_hosts(args.host)
    if not loopback:
        named = ", ".join(h for h in hosts if h not in LOOPBACK_HOSTS)
        print(
            f"thermoscope explore: warning: serving on {args.host}, reachable from other "
            f"machines as {named}",
            file=sys.stderr,
        )
    print(f"thermoscope explorer on http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    serve(create_app(backend, allowed_hosts=hosts), host=args.host, port=args.port)
    return "thermoscope explorer stopped"
