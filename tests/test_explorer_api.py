"""The explorer's JSON API, the page and its static files, through FastAPI's TestClient.

Numbers are checked against :func:`summarize_sampling`, a scipy computation
and the embedded model run directly with transformers; the model is loaded
once per module (one app with a model, cheap apps without).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from scipy import special, stats

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
torch = pytest.importorskip("torch")

from fastapi.testclient import TestClient  # noqa: E402

from thermoscope import __version__  # noqa: E402
from thermoscope.explorer import EXAMPLES, ExplorerLimits, create_app  # noqa: E402
from thermoscope.explorer.backend import ModelBackend  # noqa: E402
from thermoscope.generation import generate_at_temperatures, load_model  # noqa: E402
from thermoscope.sampling import Sampler, summarize_sampling  # noqa: E402

PROMPT = "import os\nimport sys\n\n\ndef main("
LIMITS = ExplorerLimits(max_new_tokens=32, max_prompt_chars=1500)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """One app with the embedded model, loaded on first use and shared by the module."""
    with TestClient(create_app(ModelBackend(), limits=LIMITS)) as c:
        yield c


@pytest.fixture(scope="module")
def lm() -> tuple[Any, Any]:
    """The same embedded model, loaded separately, to compute the expected numbers."""
    return load_model()


@pytest.fixture(scope="module")
def bare() -> Iterator[TestClient]:
    """An app without a model, with small caps."""
    limits = ExplorerLimits(max_logits=5, max_label_chars=8, max_body_bytes=1000)
    with TestClient(create_app(None, limits=limits)) as c:
        yield c


def detail_of(response: Any, status: int = 422) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "\n" not in detail
    return detail


# -- /api/info -----------------------------------------------------------------------


def test_info_with_a_model(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert info["version"] == __version__
    assert info["model"] == "tiny-python-gpt2"
    assert info["limits"] == dataclasses.asdict(LIMITS)
    assert info["examples"] == [
        {"name": e.name, "description": e.description, "logits": [*e.logits], "labels": [*e.labels]}
        for e in EXAMPLES
    ]
    first = info["examples"][0]
    assert first["labels"] == ["cat", "dog", "fish"]
    assert first["logits"] == [2.0, 1.0, 0.5]


def test_info_without_a_model(bare: TestClient) -> None:
    info = bare.get("/api/info").json()
    assert info["model"] is None
    assert info["limits"]["max_logits"] == 5
    assert info["limits"]["max_body_bytes"] == 1000


# -- /api/distribution ---------------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        {},
        {"temperature": 0.7},
        {"temperature": 0.0},
        {"temperature": 1.3, "top_k": 3},
        {"temperature": 0.8, "top_p": 0.9},
        {"temperature": 1.0, "min_p": 0.2},
        {"temperature": 0.5, "top_k": 4, "top_p": 0.95, "min_p": 0.01},
    ],
)
def test_distribution_equals_summarize_sampling(client: TestClient, setting: dict) -> None:
    z = [5.0, 2.2, 2.0, 4.5, 3.0, 2.7]
    out = client.post("/api/distribution", json={"logits": z, **setting}).json()
    s = summarize_sampling(z, **setting)
    # JSON carries floats exactly (shortest repr), so the numbers are identical.
    assert out["probabilities"] == s.probabilities.tolist()
    assert out["tempered"] == s.tempered.tolist()
    assert out["kept"] == s.kept.tolist()
    assert out["entropy"] == s.entropy
    assert out["nucleus_mass"] == s.nucleus_mass
    assert out["kept_count"] == s.kept_count
    assert out["max_probability"] == s.max_probability
    assert out["labels"] == [str(i) for i in range(len(z))]


def test_distribution_matches_an_independent_computation(client: TestClient) -> None:
    z = np.array([5.0, 2.2, 2.0, 4.5, 3.0, 2.7])
    body = {"logits": z.tolist(), "temperature": 0.7, "top_k": 4, "top_p": 0.9}
    out = client.post("/api/distribution", json=body).json()
    p = special.softmax(z / 0.7)
    # top-4: 5, 4.5, 3, 2.7; renormalised, the nucleus keeps tokens whose
    # strictly-more-likely mass is below 0.9.
    top4 = np.argsort(-p)[:4]
    q = p[top4] / p[top4].sum()
    above = np.concatenate([[0.0], np.cumsum(q)[:-1]])
    kept_ids = top4[above < 0.9]
    kept = np.zeros(z.size, dtype=bool)
    kept[kept_ids] = True
    probs = np.where(kept, p, 0.0) / p[kept].sum()
    assert out["kept"] == kept.tolist()
    np.testing.assert_allclose(out["tempered"], p, rtol=1e-12)
    np.testing.assert_allclose(out["probabilities"], probs, rtol=1e-12, atol=1e-15)
    assert out["nucleus_mass"] == pytest.approx(p[kept].sum(), rel=1e-12)
    assert out["kept_count"] == int(kept.sum())
    assert out["entropy"] == pytest.approx(float(special.entr(probs).sum()), rel=1e-12)
    assert out["max_probability"] == pytest.approx(probs.max(), rel=1e-12)


def test_null_logits_are_masked(client: TestClient) -> None:
    out = client.post(
        "/api/distribution", json={"logits": [2.0, None, 1.0, None], "temperature": 2.0}
    ).json()
    p = special.softmax(np.array([2.0, 1.0]) / 2.0)
    assert out["kept"] == [True, False, True, False]
    assert out["probabilities"][1] == out["probabilities"][3] == 0.0
    np.testing.assert_allclose([out["probabilities"][0], out["probabilities"][2]], p, rtol=1e-12)
    s = summarize_sampling([2.0, -np.inf, 1.0, -np.inf], temperature=2.0)
    assert out["probabilities"] == s.probabilities.tolist()


def test_labels_are_echoed_or_default_to_indices(client: TestClient) -> None:
    body = {"logits": [2.0, 1.0, 0.5], "labels": ["cat", "dog", "fish"]}
    assert client.post("/api/distribution", json=body).json()["labels"] == ["cat", "dog", "fish"]
    out = client.post("/api/distribution", json={"logits": [2.0, 1.0, 0.5]}).json()
    assert out["labels"] == ["0", "1", "2"]
    bad = client.post("/api/distribution", json={"logits": [2.0, 1.0], "labels": ["a"]})
    assert "`labels`" in detail_of(bad)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"logits": [1, 2], "temperature": -1}, "temperature"),
        ({"logits": [1, 2], "temperature": "hot"}, "temperature"),
        ({"logits": [1, 2], "top_p": 0}, "top_p"),
        ({"logits": [1, 2], "top_p": 1.5}, "top_p"),
        ({"logits": [1, 2], "min_p": 2}, "min_p"),
        ({"logits": [1, 2], "min_p": -0.1}, "min_p"),
        ({"logits": [1, 2], "top_k": -1}, "top_k"),
        ({"logits": [1, 2], "top_k": 1.5}, "top_k"),
        ({"logits": [1, "abc"]}, "logits"),
        ({"logits": "1, 2"}, "logits"),
        ({"logits": [1, 2], "colour": "red"}, "colour"),
        ({"logits": []}, "logits"),
        ({"logits": [None, None]}, "logits"),
        ({"logits": [1, 2, 3, 4, 5, 6]}, "logits"),
        ({"logits": [1, 2], "labels": ["a" * 9, "b"]}, "labels"),
        ({"temperature": 1.0}, "logits"),
    ],
)
def test_bad_distribution_requests_are_422_naming_the_field(
    bare: TestClient, body: dict, field: str
) -> None:
    assert f"`{field}" in detail_of(bare.post("/api/distribution", json=body))


def test_nan_in_a_raw_body_is_422_naming_logits(bare: TestClient) -> None:
    # Python's json accepts the NaN token; the API must still refuse the value.
    for raw in (b'{"logits": [1, NaN]}', b'{"logits": [1, Infinity]}'):
        r = bare.post(
            "/api/distribution", content=raw, headers={"content-type": "application/json"}
        )
        assert "`logits" in detail_of(r)
    r = bare.post(
        "/api/distribution",
        content=b'{"logits": [1], "temperature": NaN}',
        headers={"content-type": "application/json"},
    )
    assert "`temperature`" in detail_of(r)


def test_oversized_body_with_content_length_is_413(bare: TestClient) -> None:
    body = json.dumps({"logits": [1.0] * 600}).encode()
    assert len(body) > 1000
    r = bare.post("/api/distribution", content=body, headers={"content-type": "application/json"})
    assert "1000 bytes" in detail_of(r, 413)


def test_oversized_streamed_body_is_413(bare: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"logits": ['
        for _ in range(300):
            yield b"1.0, "
        yield b"1.0]}"

    r = bare.post(
        "/api/distribution", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "1000 bytes" in detail_of(r, 413)
    # A small streamed body is still answered.
    small = bare.post(
        "/api/distribution",
        content=iter([b'{"logits": ', b"[2, 1]}"]),
        headers={"content-type": "application/json"},
    )
    assert small.status_code == 200
    assert small.json()["kept_count"] == 2


# -- /api/next-token -----------------------------------------------------------------


def test_next_token_logits_are_the_models(client: TestClient, lm: tuple[Any, Any]) -> None:
    model, tokenizer = lm
    out = client.post("/api/next-token", json={"prompt": PROMPT, "top": 7}).json()
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        z = model(input_ids=ids).logits[0, -1].double().numpy()
    assert out["model"] == "tiny-python-gpt2"
    assert out["prompt_tokens"] == ids.shape[-1]
    assert len(out["logits"]) == z.size == model.config.vocab_size
    # float32 sums in another order (the server runs the model on one thread): ~1e-5 apart.
    np.testing.assert_allclose(out["logits"], z, rtol=0, atol=2e-5)
    order = np.argsort(-np.asarray(out["logits"]), kind="stable")[:7]
    np.testing.assert_allclose(z[order], np.sort(z)[::-1][:7], rtol=0, atol=2e-5)
    assert out["top_ids"] == order.tolist()
    assert out["top_tokens"] == [tokenizer.decode([int(i)]) for i in order]


@pytest.mark.parametrize(
    ("prompt", "why"),
    [("", "empty"), ("  \n\t ", "whitespace"), ("x" * 1501, "over max_prompt_chars")],
)
def test_next_token_bad_prompt_is_422(client: TestClient, prompt: str, why: str) -> None:
    assert "`prompt`" in detail_of(client.post("/api/next-token", json={"prompt": prompt}))


def test_next_token_prompt_longer_than_the_context_is_422(client: TestClient) -> None:
    # Short in characters, too long in tokens for the model's 256-token context.
    prompt = "x = 1\n" * 200
    assert len(prompt) <= LIMITS.max_prompt_chars
    assert "`prompt`" in detail_of(client.post("/api/next-token", json={"prompt": prompt}))


def test_next_token_bad_fields_are_422(client: TestClient) -> None:
    r = client.post("/api/next-token", json={"prompt": "x", "top": 0})
    assert "`top`" in detail_of(r)
    r = client.post("/api/next-token", json={"prompt": "x", "temperature": 1})
    assert "`temperature`" in detail_of(r)
    assert "`prompt`" in detail_of(client.post("/api/next-token", json={}))


# -- /api/sample ---------------------------------------------------------------------


def sample(client: TestClient, **body: Any) -> dict:
    r = client.post("/api/sample", json={"prompt": PROMPT, "max_new_tokens": 12, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_sample_is_reproducible_and_depends_on_the_seed(client: TestClient) -> None:
    a = sample(client, temperature=1.5, seed=3)
    b = sample(client, temperature=1.5, seed=3)
    assert a == b
    texts = {sample(client, temperature=1.5, seed=s)["text"] for s in range(4)}
    assert len(texts) > 1


@pytest.mark.parametrize(
    "setting",
    [
        {"temperature": 0.9, "seed": 11},
        {"temperature": 1.2, "top_k": 20, "top_p": 0.9, "seed": 5},
        {"temperature": 0.7, "min_p": 0.05, "seed": 0},
    ],
)
def test_sample_equals_generate_at_temperatures(
    client: TestClient, lm: tuple[Any, Any], setting: dict
) -> None:
    model, tokenizer = lm
    out = sample(client, **setting)
    options = {k: setting[k] for k in ("top_k", "top_p", "min_p") if k in setting}
    ref = generate_at_temperatures(
        model,
        tokenizer,
        PROMPT,
        [setting["temperature"]],
        n=1,
        max_new_tokens=12,
        seed=setting["seed"],
        sampler_options=options,
        progress=False,
    ).samples[0]
    assert out["model"] == "tiny-python-gpt2"
    assert out["text"] == ref.text
    assert out["tokens"] == list(ref.tokens)
    assert out["mean_logprob"] == pytest.approx(ref.mean_logprob, rel=1e-6)


def test_zero_temperature_sample_is_greedy(client: TestClient, lm: tuple[Any, Any]) -> None:
    model, tokenizer = lm
    out = sample(client, temperature=0.0, seed=1)
    assert out == sample(client, temperature=0.0, seed=2)
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        seq = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=12,
            pad_token_id=tokenizer.eos_token_id,
        )
    greedy = seq[0, ids.shape[-1] :].tolist()
    assert out["tokens"] == greedy[: len(out["tokens"])]
    assert out["text"] == tokenizer.decode(out["tokens"], skip_special_tokens=True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "", "max_new_tokens": 8}, "prompt"),
        ({"prompt": "   ", "max_new_tokens": 8}, "prompt"),
        ({"prompt": "y" * 1501, "max_new_tokens": 8}, "prompt"),
        ({"prompt": "x = 1\n" * 200, "max_new_tokens": 8}, "prompt"),
        ({"prompt": PROMPT, "max_new_tokens": 33}, "max_new_tokens"),
        ({"prompt": PROMPT, "max_new_tokens": 0}, "max_new_tokens"),
        ({"prompt": PROMPT, "temperature": -1}, "temperature"),
        ({"prompt": PROMPT, "top_p": 1.5}, "top_p"),
        ({"prompt": PROMPT, "seed": -1}, "seed"),
        ({"prompt": PROMPT, "n": 2}, "n"),
    ],
)
def test_bad_sample_requests_are_422_naming_the_field(
    client: TestClient, body: dict, field: str
) -> None:
    assert f"`{field}`" in detail_of(client.post("/api/sample", json=body))


def test_max_new_tokens_past_the_context_is_422(client: TestClient, lm: tuple[Any, Any]) -> None:
    # Within the cap of 32 but not within the model's context: the prompt leaves < 32 tokens.
    model, tokenizer = lm
    context = model.config.n_positions
    prompt = "x = 1\n"
    while len(tokenizer(prompt).input_ids) < context - 16:
        prompt += "x = 1\n"
    assert len(tokenizer(prompt).input_ids) < context
    r = client.post("/api/sample", json={"prompt": prompt, "max_new_tokens": 32})
    assert "`max_new_tokens`" in detail_of(r)


# -- no model ------------------------------------------------------------------------


def test_model_routes_are_503_without_a_model(bare: TestClient) -> None:
    for route, body in (
        ("/api/next-token", {"prompt": "import os"}),
        ("/api/sample", {"prompt": "import os", "max_new_tokens": 4}),
    ):
        detail = detail_of(bare.post(route, json=body), 503)
        assert "no model" in detail
    out = bare.post("/api/distribution", json={"logits": [2, 1, 0.5], "top_k": 2})
    assert out.status_code == 200
    assert out.json()["kept"] == [True, True, False]


# -- the page --------------------------------------------------------------------------


def test_page_and_static_files(bare: TestClient) -> None:
    page = bare.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/sampling.js"' in page.text
    assert '<script src="/static/state.js"' in page.text
    assert '<script src="/static/explorer.js"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "object-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for path, kinds in (
        ("/static/sampling.js", ("text/javascript", "application/javascript")),
        ("/static/state.js", ("text/javascript", "application/javascript")),
        ("/static/explorer.js", ("text/javascript", "application/javascript")),
        ("/static/explorer.css", ("text/css",)),
    ):
        r = bare.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].split(";")[0] in kinds, path
        assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "function summarize" in bare.get("/static/sampling.js").text
    assert bare.get("/static/no-such-file.js").status_code == 404
    assert "default-src 'self'" in bare.get("/api/info").headers["content-security-policy"]


def test_invalid_json_is_422_saying_so(bare: TestClient) -> None:
    r = bare.post(
        "/api/distribution",
        content=b'{"logits": [1, 2',
        headers={"content-type": "application/json"},
    )
    assert "valid JSON" in detail_of(r)


def test_max_new_tokens_defaults_to_the_servers_cap_when_lower() -> None:
    # A client that leaves max_new_tokens out must not be refused by a server whose cap is
    # below the default of 40.
    backend = ModelBackend()
    with TestClient(create_app(backend, limits=ExplorerLimits(max_new_tokens=5))) as c:
        r = c.post("/api/sample", json={"prompt": PROMPT, "temperature": 0})
        assert r.status_code == 200, r.text
        assert 1 <= len(r.json()["tokens"]) <= 5
        assert "`max_new_tokens`" in detail_of(
            c.post("/api/sample", json={"prompt": PROMPT, "max_new_tokens": 6})
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"logits": [True, 1.0]}, "logits.0"),
        ({"logits": [1.0, 2.0], "top_k": True}, "top_k"),
        ({"logits": [1.0, 2.0], "top_k": 2.5}, "top_k"),
        ({"logits": [1.0, 2.0], "top_p": "0.5"}, "top_p"),
        ({"logits": [1.0, 2.0], "labels": [1, 2]}, "labels.0"),
    ],
)
def test_values_of_the_wrong_json_type_are_422_not_coerced(
    bare: TestClient, body: dict, field: str
) -> None:
    # JSON true is not the number 1 and "0.5" is not 0.5: no lax coercion.
    assert f"`{field}`" in detail_of(bare.post("/api/distribution", json=body))


# -- /api/draw ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        {},
        {"temperature": 0.7, "top_k": 3},
        {"temperature": 1.3, "top_p": 0.8, "min_p": 0.05},
        {"temperature": 0.0},
    ],
)
def test_draw_counts_are_the_samplers_seeded_draws(bare: TestClient, setting: dict) -> None:
    logits = [2.0, None, 1.0, 0.5, 1.0]
    body = {"logits": logits, "n": 5000, "seed": 11, **setting}
    r = bare.post("/api/draw", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    z = np.array([-np.inf if v is None else v for v in logits])
    sampler = Sampler.from_options(
        temperature=setting.get("temperature", 1.0),
        top_k=setting.get("top_k"),
        top_p=setting.get("top_p"),
        min_p=setting.get("min_p"),
    )
    expected = np.bincount(sampler.sample(z, n=5000, seed=11), minlength=5)
    assert out["counts"] == expected.tolist()
    assert out["counts"][1] == 0  # masked
    probs = sampler.probs(z)
    np.testing.assert_allclose(out["probabilities"], probs, rtol=1e-12)
    assert all(c == 0 for c, p in zip(out["counts"], probs, strict=True) if p == 0)
    possible = probs > 0
    if possible.sum() >= 2:
        want = stats.chisquare(expected[possible], 5000 * probs[possible] / probs[possible].sum())
        assert out["chi_square_p"] == pytest.approx(want.pvalue, rel=1e-9)
    else:
        assert out["chi_square_p"] is None


def test_draw_is_reproducible_and_seed_dependent(bare: TestClient) -> None:
    body = {"logits": [1.0, 1.0, 1.0], "n": 300}
    a = bare.post("/api/draw", json={**body, "seed": 1}).json()["counts"]
    assert bare.post("/api/draw", json={**body, "seed": 1}).json()["counts"] == a
    assert bare.post("/api/draw", json={**body, "seed": 2}).json()["counts"] != a


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"logits": [1.0, 2.0], "n": 0}, "n"),
        ({"logits": [1.0, 2.0], "n": 2_000_000}, "n"),
        ({"logits": [1.0, 2.0], "seed": -1}, "seed"),
        ({"logits": [None, None]}, "logits"),
        ({"logits": [1.0, 2.0], "top_p": 0}, "top_p"),
    ],
)
def test_bad_draw_requests_are_422_naming_the_field(
    bare: TestClient, body: dict, field: str
) -> None:
    assert f"`{field}`" in detail_of(bare.post("/api/draw", json=body))


def test_allowed_hosts_refuse_other_host_names() -> None:
    from thermoscope.explorer.middleware import LOOPBACK_HOSTS

    app = create_app(None, allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1:8765") as ok:
        assert ok.get("/api/info").status_code == 200
    with TestClient(app, base_url="http://localhost") as ok:
        assert ok.get("/").status_code == 200
    with TestClient(app, base_url="http://attacker.example:8765") as rebound:
        assert rebound.get("/api/info").status_code == 400
        assert rebound.post("/api/distribution", json={"logits": [1.0]}).status_code == 400
