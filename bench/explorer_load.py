"""Load test: concurrent clients against the explorer's JSON API, on loopback only.

Run ``python bench/explorer_load.py`` (under a minute). It starts the explorer
(:func:`thermoscope.explorer.create_app` with the embedded model) under uvicorn
on a free port of 127.0.0.1, in a thread of this process, and prints a
markdown table of latency percentiles and throughput for

- ``distribution``: ``POST /api/distribution`` (numpy only), ``--requests``
  requests (default 2,000) from ``--clients`` concurrent clients (default 16);
  each body is drawn from a seeded numpy Generator: 3..512 random logits (some
  masked as ``null``) and a random temperature / top-k / top-p / min-p setting;
- ``next-token``: ``POST /api/next-token`` on short Python prompts, which runs
  the tiny GPT-2 (one request at a time: the backend serialises model calls),
  ``--model-requests`` requests (default 200);
- ``mixed``: ``--requests`` requests, every tenth a next-token request.

Each client is a thread with its own ``httpx.Client`` (keep-alive, no proxy
from the environment). Latency is the time from sending a request to having
read its whole response. Every run is bounded: a per-request ``--timeout`` and
an overall ``--deadline`` after which no new request starts.

By default the server is the real command, ``thermoscope explore``, in its own
process; ``--server thread`` runs it in a thread of this process instead (it
then shares the GIL with the client threads, so its figures are lower).

:func:`run_load` is importable (the test suite drives it against its own
server); it refuses any base URL whose host is not a loopback address.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import platform
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

ROUTES = ("distribution", "next-token", "mixed")
PATHS = {"distribution": "/api/distribution", "next-token": "/api/next-token"}
PROMPTS = (
    "import os\nimport",
    "def main(",
    "for i in range(",
    "from typing import",
    "class Config:\n    def __init__(self",
    "if __name__ ==",
    "with open(path) as",
    "return self.",
)


@dataclass(frozen=True)
class Exchange:
    """One request kept for inspection: where it went, what it sent, what came back."""

    index: int
    path: str
    payload: dict[str, Any]
    status: int
    body: Any


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured.

    ``count`` requests were sent (fewer than asked if the deadline passed);
    ``errors`` of them failed: a transport error (timeout, refused connection)
    or a status other than 200. Latency percentiles are over the requests that
    got a response, in milliseconds; ``per_path`` maps each path to
    ``(responses, p50_ms, p99_ms)`` (the two kinds of a mixed run differ).
    """

    route: str
    clients: int
    count: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests_per_s: float
    wall_s: float
    statuses: dict[int, int] = field(default_factory=dict)
    per_path: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    exchanges: tuple[Exchange, ...] = ()


def check_loopback(base_url: str) -> str:
    """``base_url`` without a trailing slash, if its host is a loopback IP address.

    Only literal addresses (127.0.0.0/8, ::1) pass: a name such as
    ``localhost`` could resolve elsewhere.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise ValueError(
            "`base_url` must be an http(s) URL whose host is a loopback address such as "
            f"127.0.0.1 (this load test never leaves the machine), got {base_url!r}."
        )
    return base_url.rstrip("/")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")


def _check_seconds(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"`{name}` must be a number of seconds > 0, got {value!r}.")


def distribution_payload(rng: np.random.Generator) -> dict[str, Any]:
    """A random, valid ``/api/distribution`` body: 3..512 logits and a random setting."""
    n = int(rng.integers(3, 513))
    logits: list[float | None] = (rng.normal(0.0, 3.0, n)).tolist()
    # A few masked tokens (null = -inf), never all of them.
    for i in rng.choice(n, size=int(rng.integers(0, n // 4 + 1)), replace=False).tolist():
        if i != 0:
            logits[i] = None
    payload: dict[str, Any] = {
        "logits": logits,
        "temperature": 0.0 if rng.random() < 0.1 else float(rng.uniform(0.05, 3.0)),
        "top_k": 0 if rng.random() < 0.5 else int(rng.integers(1, n + 1)),
        "top_p": 1.0 if rng.random() < 0.5 else float(rng.uniform(0.05, 1.0)),
        "min_p": 0.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 0.3)),
    }
    if rng.random() < 0.2:
        payload["labels"] = [f"t{i}" for i in range(n)]
    return payload


def request_for(route: str, index: int, *, seed: int = 0) -> tuple[str, dict[str, Any]]:
    """The path and body of request ``index`` of a run (the same for the same seed)."""
    rng = np.random.default_rng([seed, index])
    kind = route if route != "mixed" else ("next-token" if index % 10 == 9 else "distribution")
    if kind == "next-token":
        return PATHS[kind], {"prompt": PROMPTS[index % len(PROMPTS)], "top": 20}
    return PATHS[kind], distribution_payload(rng)


def run_load(
    base_url: str,
    *,
    requests: int = 2000,
    clients: int = 16,
    route: str = "distribution",
    timeout: float = 30.0,
    deadline_s: float = 300.0,
    seed: int = 0,
    keep: int = 0,
) -> LoadResult:
    """Send ``requests`` requests from ``clients`` concurrent clients; measure them.

    Parameters
    ----------
    base_url : str
        The server, e.g. ``http://127.0.0.1:8765``; its host must be a loopback address.
    requests : int
        How many requests in all.
    clients : int
        Concurrent clients, each a thread with its own connection.
    route : {"distribution", "next-token", "mixed"}
    timeout : float
        Seconds one request may take.
    deadline_s : float
        Seconds after which no new request starts (a request in flight then
        still has its ``timeout``).
    seed : int
        Seeds the request bodies (see :func:`request_for`).
    keep : int
        Keep about this many exchanges, spread evenly over the run, in
        ``LoadResult.exchanges``.

    Returns
    -------
    LoadResult

    Raises
    ------
    ValueError
        If ``base_url``'s host is not a loopback address, or an argument is out of range.
    """
    import httpx

    url = check_loopback(base_url)
    _check_count("requests", requests)
    _check_count("clients", clients)
    _check_seconds("timeout", timeout)
    _check_seconds("deadline_s", deadline_s)
    if route not in ROUTES:
        raise ValueError(f"`route` must be one of {', '.join(ROUTES)}, got {route!r}.")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ValueError(f"`keep` must be an integer >= 0, got {keep!r}.")
    stride = max(1, requests // keep) if keep > 0 else 0

    counter = iter(range(requests))
    lock = threading.Lock()
    start = time.perf_counter()
    stop_at = start + deadline_s

    def next_index() -> int | None:
        with lock:
            return next(counter, None)

    def client_loop() -> tuple[
        list[tuple[str, float]], Counter[int], Counter[str], list[Exchange], int
    ]:
        latencies: list[tuple[str, float]] = []
        statuses: Counter[int] = Counter()
        failures: Counter[str] = Counter()
        kept: list[Exchange] = []
        sent = 0
        with httpx.Client(base_url=url, timeout=timeout, trust_env=False) as client:
            while time.perf_counter() < stop_at and (index := next_index()) is not None:
                path, payload = request_for(route, index, seed=seed)
                sent += 1
                t0 = time.perf_counter()
                try:
                    response = client.post(path, json=payload)
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] += 1
                    continue
                latencies.append((path, time.perf_counter() - t0))
                statuses[response.status_code] += 1
                if stride and index % stride == 0:
                    kept.append(
                        Exchange(index, path, payload, response.status_code, response.json())
                    )
        return latencies, statuses, failures, kept, sent

    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="load-client") as pool:
        futures = [pool.submit(client_loop) for _ in range(clients)]
        parts = [f.result() for f in futures]
    wall = time.perf_counter() - start

    timed = [pair for part in parts for pair in part[0]]
    latencies = np.array([t for _, t in timed], dtype=np.float64) * 1e3
    per_path = {}
    for path in sorted({p for p, _ in timed}):
        ms = latencies[[p == path for p, _ in timed]]
        p50_path, p99_path = np.percentile(ms, [50, 99])
        per_path[path] = (int(ms.size), float(p50_path), float(p99_path))
    statuses: Counter[int] = sum((part[1] for part in parts), Counter())
    failures: Counter[str] = sum((part[2] for part in parts), Counter())
    count = sum(part[4] for part in parts)
    if latencies.size:
        p50, p90, p99 = (float(v) for v in np.percentile(latencies, [50, 90, 99]))
        top = float(latencies.max())
    else:
        p50 = p90 = p99 = top = float("nan")
    return LoadResult(
        route=route,
        clients=clients,
        count=count,
        errors=sum(failures.values()) + sum(n for s, n in statuses.items() if s != 200),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=top,
        requests_per_s=count / wall if wall > 0 else float("nan"),
        wall_s=wall,
        statuses=dict(sorted(statuses.items())),
        per_path=per_path,
        failures=dict(failures),
        exchanges=tuple(sorted((e for part in parts for e in part[3]), key=lambda e: e.index)),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving_process(timeout: float = 120.0) -> Iterator[str]:
    """Run ``thermoscope explore`` (the real command) on a free loopback port; yield its URL."""
    import subprocess

    import httpx

    port = _free_port()
    command = [sys.executable, "-m", "thermoscope", "explore", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`thermoscope explore` exited with status {proc.returncode}")
            try:
                if httpx.get(f"{url}/api/info", timeout=2.0, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"`thermoscope explore` did not answer on port {port}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _warm_up(base_url: str, route: str) -> None:
    # The first model request imports torch and loads the model (seconds); it
    # is not what a user of a running explorer waits for.
    import httpx

    if route in ("next-token", "mixed"):
        with httpx.Client(base_url=base_url, timeout=120.0, trust_env=False) as client:
            client.post(PATHS["next-token"], json={"prompt": PROMPTS[0], "top": 20})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per numpy-route run")
    parser.add_argument("--model-requests", type=int, default=200, help="next-token run")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--route", choices=[*ROUTES, "all"], default="all")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server",
        choices=["process", "thread"],
        default="process",
        help="process: `thermoscope explore` in its own process (default); thread: in this one",
    )
    args = parser.parse_args(argv)

    import httpx
    import uvicorn

    from thermoscope.explorer import BackgroundServer, create_app
    from thermoscope.explorer.backend import ModelBackend

    routes = list(ROUTES) if args.route == "all" else [args.route]
    where = (
        "server: `thermoscope explore` in its own process"
        if args.server == "process"
        else "server and clients in one process"
    )
    print(
        f"python {platform.python_version()}, uvicorn {uvicorn.__version__}, "
        f"httpx {httpx.__version__}, {os.cpu_count()} CPUs; {where}, "
        f"{args.clients} clients on 127.0.0.1, latency in milliseconds\n"
    )
    print("| route | requests | clients | errors | p50 | p90 | p99 | max | req/s | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    server = (
        serving_process()
        if args.server == "process"
        else BackgroundServer(create_app(ModelBackend()))
    )
    with server as base_url:
        for route in routes:
            _warm_up(base_url, route)
            n = args.model_requests if route == "next-token" else args.requests
            r = run_load(
                base_url,
                requests=n,
                clients=args.clients,
                route=route,
                timeout=args.timeout,
                deadline_s=args.deadline,
                seed=args.seed,
            )
            failed = failed or r.errors > 0 or r.count < n
            print(
                f"| {route} | {r.count} | {r.clients} | {r.errors} | {r.p50_ms:.1f} "
                f"| {r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | {r.requests_per_s:.0f} "
                f"| {r.wall_s:.1f} |",
                flush=True,
            )
            if route == "mixed":
                for path, (k, p50, p99) in r.per_path.items():
                    print(f"| - {path} | {k} | | | {p50:.1f} | | {p99:.1f} | | | |")
            if r.errors or r.count < n:
                print(f"  statuses {r.statuses}, failures {r.failures}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
