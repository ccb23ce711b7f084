"""A bounded loopback load test of the explorer: 2,000 requests from 16 clients.

The load generator is ``bench/explorer_load.py`` (``run_load``), driven here
against a real uvicorn server on 127.0.0.1 (``thermoscope.explorer.BackgroundServer``). It
asserts no errors and correct answers, never a time: p50 / p99 are printed
(``pytest -s``) and recorded as junit properties, for the README.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from thermoscope.explorer import BackgroundServer, create_app
from thermoscope.sampling import summarize_sampling

BENCH = Path(__file__).resolve().parents[1] / "bench" / "explorer_load.py"
REQUESTS = 2000
CLIENTS = 16


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    # bench/ is not a package: load the script as a module by its path. It is
    # registered in sys.modules first because dataclasses look their module up.
    name = "thermoscope_bench_explorer_load"
    spec = importlib.util.spec_from_file_location(name, BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def _expected(payload: dict[str, Any]) -> dict[str, Any]:
    """What /api/distribution should answer, computed by the library directly."""
    z = [-math.inf if v is None else v for v in payload["logits"]]
    options = {k: payload[k] for k in ("temperature", "top_k", "top_p", "min_p")}
    s = summarize_sampling(z, **options)
    return {
        "labels": payload.get("labels", [str(i) for i in range(len(z))]),
        "tempered": s.tempered.tolist(),
        "probabilities": s.probabilities.tolist(),
        "kept": s.kept.tolist(),
        "entropy": s.entropy,
        "nucleus_mass": s.nucleus_mass,
        "kept_count": s.kept_count,
        "max_probability": s.max_probability,
    }


@pytest.mark.slow
def test_distribution_under_load_has_no_errors(
    bench: ModuleType, record_property: Callable[[str, object], None]
) -> None:
    with BackgroundServer(create_app()) as base_url:
        result = bench.run_load(
            base_url,
            requests=REQUESTS,
            clients=CLIENTS,
            route="distribution",
            timeout=60.0,
            deadline_s=600.0,
            keep=40,
        )
    print(
        f"\n/api/distribution: {result.count} requests, {result.clients} clients, "
        f"{result.errors} errors, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"max {result.max_ms:.1f} ms, {result.requests_per_s:.0f} req/s, {result.wall_s:.1f} s"
    )
    for key in ("count", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms", "requests_per_s"):
        record_property(f"load_distribution_{key}", getattr(result, key))

    assert result.count == REQUESTS
    assert result.errors == 0, (result.statuses, result.failures)
    assert result.statuses == {200: REQUESTS}
    assert result.failures == {}
    assert 0.0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms

    assert len(result.exchanges) == 40
    lengths = {len(e.payload["logits"]) for e in result.exchanges}
    assert min(lengths) >= 3
    assert max(lengths) <= 512
    assert len(lengths) > 10  # the bodies vary
    for exchange in result.exchanges:
        assert exchange.path == "/api/distribution"
        assert exchange.status == 200
        # Re-drawing request `index` gives the body that was sent: run_load is seeded.
        assert bench.request_for("distribution", exchange.index) == (
            exchange.path,
            exchange.payload,
        )
        # Exact: JSON carries each float64 exactly (shortest round-trip repr),
        # and the server runs the same deterministic numpy code on the same values.
        assert exchange.body == _expected(exchange.payload)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:8765",
        "http://10.0.0.1:8765",
        "http://0.0.0.0:8765",
        "http://localhost:8765",
        "http://127.0.0.1.nip.io:8765",
        "ftp://127.0.0.1:8765",
        "127.0.0.1:8765",
    ],
)
def test_run_load_refuses_a_non_loopback_url(bench: ModuleType, url: str) -> None:
    with pytest.raises(ValueError, match="`base_url` must be") as info:
        bench.run_load(url, requests=1, clients=1, route="distribution", timeout=1.0)
    assert repr(url) in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/", "http://127.8.9.10", "http://[::1]:80"])
def test_loopback_urls_pass_the_check(bench: ModuleType, url: str) -> None:
    assert bench.check_loopback(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"requests": 0}, "requests"),
        ({"clients": 0}, "clients"),
        ({"timeout": 0.0}, "timeout"),
        ({"deadline_s": -1.0}, "deadline_s"),
        ({"route": "sample"}, "route"),
        ({"keep": -1}, "keep"),
    ],
)
def test_run_load_rejects_bad_arguments(
    bench: ModuleType, kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=f"`{name}` must"):
        bench.run_load("http://127.0.0.1:1", **kwargs)
