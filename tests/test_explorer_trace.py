"""POST /api/trace: any sampler chain, stage by stage, through the real FastAPI app."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from scipy import special

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from thermoscope.explorer import ExplorerLimits, create_app
from thermoscope.sampling.engines import ENGINE_PRESETS

LOGITS = [5.0, 2.2, 2.0, 4.5, 3.0, 2.7]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(None, limits=ExplorerLimits(max_draws=50_000))) as c:
        yield c


def test_trace_of_the_llama_cpp_preset_is_its_chain(client):
    r = client.post("/api/trace", json={"logits": LOGITS, "preset": "llama.cpp"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["order"] == ["top_k", "top_p", "min_p", "temperature"]
    ref = ENGINE_PRESETS["llama.cpp"].sampler().probs(np.array(LOGITS))
    np.testing.assert_allclose(body["probabilities"], ref, rtol=1e-12)
    assert body["stages"][0]["name"] == "input"
    np.testing.assert_allclose(body["stages"][0]["mass"], 1.0)
    assert body["counts"] is None


def test_fields_sent_override_the_preset_and_draws_are_tested(client):
    payload = {"logits": LOGITS, "preset": "llama.cpp", "temperature": 2.0, "n": 20_000}
    body = client.post("/api/trace", json=payload).json()
    assert "Temperature(temperature=2.0)" in body["sampler"]
    assert sum(body["counts"]) == 20_000
    assert body["chi_square_p"] > 1e-3
    # Temperature last (llama.cpp): its input is the truncated, untempered distribution.
    kept = [i for i, p in enumerate(body["probabilities"]) if p > 0]
    z = np.array(LOGITS)[kept] / 2.0
    np.testing.assert_allclose(
        [body["probabilities"][i] for i in kept], special.softmax(z), rtol=1e-12
    )


def test_trace_matches_the_distribution_route_for_the_four_sliders(client):
    setting = {"logits": LOGITS, "temperature": 0.7, "top_k": 3, "top_p": 0.9}
    a = client.post("/api/trace", json=setting).json()
    b = client.post("/api/distribution", json=setting).json()
    np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-12)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"logit_bias": {"x": 1.0}}, "logit_bias"),
        ({"n": 10**8}, "n"),
        ({"preset": "gpt"}, "preset"),
        ({"top_p": 1.5}, "top_p"),
        ({"typo": 1}, "typo"),
    ],
)
def test_refusals_name_the_field(client, payload, field):
    r = client.post("/api/trace", json={"logits": LOGITS, **payload})
    assert r.status_code == 422
    assert field in r.json()["detail"]
