"""Regression tests for issue 16 (explorer): the page's arithmetic and the server's limits."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import thermoscope.explorer
from thermoscope.sampling import summarize_sampling

SAMPLING_JS = Path(thermoscope.explorer.__file__).with_name("static") / "sampling.js"

DRIVER = r"""
const M = require(process.argv[1]);
let text = "";
process.stdin.on("data", (c) => { text += c; });
process.stdin.on("end", () => {
  const out = JSON.parse(text).map((c) => {
    const m = Math.max(...c.logits);
    return { kept: Array.from(M.summarize(c.logits, {
      temperature: 1, topK: 0, topP: c.topP, minP: 0 }).kept),
      weights: c.logits.map((v) => Math.exp(v - m)) };
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def boundary_cases(count: int, seed: int) -> list[dict[str, object]]:
    """Logits with top_p set exactly to a cumulative mass, as Python computes it."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        size = int(rng.integers(3, 400 if rng.random() < 0.3 else 12))
        z = np.round(rng.normal(size=size) * rng.uniform(0.5, 4), int(rng.integers(1, 4)))
        w = np.exp(z - z.max())
        total = w[None, :].sum(axis=-1, dtype=np.float64)[0]
        through = np.cumsum(np.sort(w)[::-1])
        j = int(rng.integers(0, size - 1))
        top_p = float(through[j] / total)
        if 0 < top_p < 1:
            cases.append({"logits": z.tolist(), "topP": top_p})
    return cases


def test_page_top_p_on_a_cumulative_mass_boundary_matches_python() -> None:
    """Same summation order (numpy's pairwise sum) on both sides: same cut.

    Where V8's ``Math.exp`` and numpy's ``exp`` round one weight differently
    (1 ulp; neither is correctly rounded everywhere), a p placed exactly on
    the boundary can still fall either way: those cases are counted apart.
    Before the fix, the cases with identical weights disagreed too.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node")
    cases = boundary_cases(500, seed=18)
    done = subprocess.run([node, "-e", DRIVER, str(SAMPLING_JS)], input=json.dumps(cases),
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    same_weights = differ = 0
    for case, js in zip(cases, json.loads(done.stdout), strict=True):
        z = np.asarray(case["logits"])
        if not np.array_equal(np.exp(z - z.max()), np.asarray(js["weights"])):
            continue
        same_weights += 1
        differ += summarize_sampling(z, top_p=case["topP"]).kept.tolist() != js["kept"]
    assert same_weights >= 50  # enough knife-edge cases where the arithmetic can agree
    assert differ == 0


# ------------------------------------------------------------------ item 20: timeouts and queue


def test_connections_with_unfinished_headers_are_closed() -> None:
    import socket
    import time

    pytest.importorskip("uvicorn")
    from thermoscope.explorer import create_app
    from thermoscope.explorer.server import BackgroundServer

    with BackgroundServer(create_app(), header_timeout=0.5) as url:
        host, port = url.removeprefix("http://").split(":")
        slow = []
        for i in range(20):
            s = socket.create_connection((host, int(port)), timeout=10)
            if i % 2:
                s.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(s)
        time.sleep(0.3)
        for s in slow[1::2]:  # more bytes do not reset the clock
            s.sendall(b"a")
        closed = 0
        for s in slow:
            try:
                closed += s.recv(1) == b""  # the server closed it (within the socket timeout)
            finally:
                s.close()
        assert closed == 20
        # A complete request is still answered.
        import httpx

        assert httpx.get(f"{url}/api/info", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def backend():  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from thermoscope.explorer.backend import ModelBackend

    model = ModelBackend(max_waiting=2)
    model.load()
    return model


def test_full_model_queue_answers_429_with_retry_after_and_logits_routes_still_answer(
    backend,  # type: ignore[no-untyped-def]
) -> None:
    import threading

    from fastapi.testclient import TestClient

    from thermoscope.explorer import create_app

    client = TestClient(create_app(backend))
    release = threading.Event()
    entered = threading.Semaphore(0)

    def hold() -> None:
        with backend._turn():
            entered.release()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.acquire(timeout=30)
    waiter = threading.Thread(  # the second place in the queue: waits for the lock
        target=lambda: client.post("/api/next-token", json={"prompt": "import os"})
    )
    waiter.start()
    try:
        for _ in range(100):
            if backend._waiting == 2:
                break
            threading.Event().wait(0.05)
        assert backend._waiting == 2
        busy = client.post("/api/next-token", json={"prompt": "import os"})
        assert busy.status_code == 429
        assert int(busy.headers["Retry-After"]) >= 1
        assert "busy" in busy.json()["detail"]
        # The logits routes never wait for the model.
        fine = client.post("/api/distribution", json={"logits": [2, 1, 0.5], "top_k": 2})
        assert fine.status_code == 200
    finally:
        release.set()
        holder.join(30)
        waiter.join(60)
    assert client.post("/api/next-token", json={"prompt": "import os"}).status_code == 200
