"""POST /api/generate-stream: a continuation token by token, as newline-delimited JSON.

Checked against independent computations: the tokens against the CLI
(``thermoscope generate -n 1``, run through ``thermoscope.cli.main``) and
``generate_at_temperatures``; each step's distribution against transformers'
own warpers applied to the model's teacher-forced logits; the refusals by
status and the field they name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from transformers import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from thermoscope.cli import main
from thermoscope.explorer import ExplorerLimits, create_app
from thermoscope.explorer.backend import ModelBackend
from thermoscope.generation import generate_at_temperatures, load_model

PROMPT = "import os\nimport sys\n\n\ndef main("
LIMITS = ExplorerLimits(max_new_tokens=32, max_prompt_chars=1500)
SETTINGS = [
    {"temperature": 1.0},
    {"temperature": 0.8, "top_p": 0.9},
    {"temperature": 1.3, "top_k": 5, "min_p": 0.05},
    {"temperature": 0.0},
]


@pytest.fixture(scope="module")
def backend() -> ModelBackend:
    model = ModelBackend()
    model.load()
    return model


@pytest.fixture(scope="module")
def client(backend: ModelBackend) -> Iterator[TestClient]:
    with TestClient(create_app(backend, limits=LIMITS)) as c:
        yield c


@pytest.fixture(scope="module")
def lm() -> tuple[Any, Any]:
    """The same embedded model, loaded separately, to compute the expected numbers."""
    return load_model()


def stream(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    r = client.post("/api/generate-stream", json={"prompt": PROMPT, **body})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.text.endswith("\n")
    return [json.loads(line) for line in r.text.splitlines()]


def detail_of(response: Any, status: int = 422) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "\n" not in detail
    return detail


def cli_tokens(capsys: pytest.CaptureFixture[str], setting: dict[str, Any], **kw: Any) -> list:
    argv = ["generate", "--prompt", kw.get("prompt", PROMPT), "-n", "1"]
    argv += ["-t", str(setting.get("temperature", 1.0))]
    for key, flag in (("top_k", "--top-k"), ("top_p", "--top-p"), ("min_p", "--min-p")):
        if key in setting:
            argv += [flag, str(setting[key])]
    argv += ["--seed", str(kw["seed"]), "--max-new-tokens", str(kw["max_new_tokens"]), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["samples"]) == 1
    return list(out["samples"][0]["tokens"])


# -- the events ------------------------------------------------------------------------


def test_events_come_in_order_start_tokens_end(client: TestClient) -> None:
    events = stream(client, temperature=0.9, max_new_tokens=12, seed=3, top=7)
    assert [e["event"] for e in events] == ["start"] + ["token"] * (len(events) - 2) + ["end"]
    start, tokens, end = events[0], events[1:-1], events[-1]
    assert start["model"] == "tiny-python-gpt2"
    assert start["max_new_tokens"] == 12
    assert start["seed"] == 3
    assert start["prompt_tokens"] > 0
    assert [t["step"] for t in tokens] == list(range(len(tokens)))
    assert [t["token_id"] for t in tokens] == end["tokens"]
    assert end["stopped"] in {"length", "eos"}
    assert len(tokens) == 12 or end["stopped"] == "eos"
    assert "".join(t["text"] for t in tokens) == end["text"]
    for t in tokens:
        assert len(t["top_ids"]) == len(t["top_tokens"]) == len(t["top_probabilities"]) == 7
        probs = t["top_probabilities"]
        assert probs == sorted(probs, reverse=True)
        assert 0 < t["probability"] <= 1
        assert sum(probs) <= 1 + 1e-6
        if t["token_id"] in t["top_ids"]:
            assert t["probability"] == probs[t["top_ids"].index(t["token_id"])]
        else:
            assert t["probability"] <= probs[-1]
        assert t["logprob"] <= 0
    assert end["mean_logprob"] == pytest.approx(np.mean([t["logprob"] for t in tokens]))
    assert end["first_token_ms"] > 0
    assert end["ms_per_token"] > 0


def test_the_stream_has_the_cli_tokens_and_the_sample_routes(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    for k, setting in enumerate(SETTINGS):
        seed = 11 + k
        events = stream(client, **setting, max_new_tokens=20, seed=seed)
        tokens = events[-1]["tokens"]
        assert tokens == cli_tokens(capsys, setting, seed=seed, max_new_tokens=20), setting
        sample = client.post(
            "/api/sample", json={"prompt": PROMPT, **setting, "max_new_tokens": 20, "seed": seed}
        ).json()
        assert sample["tokens"] == tokens
        assert sample["text"] == events[-1]["text"]
        # The stream's log p comes from the cached steps, /api/sample's from one
        # teacher-forced pass: the same numbers up to float32 rounding.
        assert events[-1]["mean_logprob"] == pytest.approx(sample["mean_logprob"], abs=1e-4)


def test_the_stream_equals_generate_at_temperatures(client: TestClient, lm: Any) -> None:
    model, tokenizer = lm
    result = generate_at_temperatures(
        model,
        tokenizer,
        PROMPT,
        [0.7],
        n=1,
        max_new_tokens=16,
        seed=5,
        sampler_options={"top_k": 0, "top_p": 0.95, "min_p": 0.0},
        progress=False,
    )
    events = stream(client, temperature=0.7, top_p=0.95, max_new_tokens=16, seed=5)
    assert events[-1]["tokens"] == list(result.samples[0].tokens)


def test_a_seed_reproduces_its_stream_and_another_differs(client: TestClient) -> None:
    first = stream(client, temperature=1.2, max_new_tokens=16, seed=7)
    again = stream(client, temperature=1.2, max_new_tokens=16, seed=7)
    other = stream(client, temperature=1.2, max_new_tokens=16, seed=8)
    assert [e for e in first if e["event"] == "token"] == [
        e for e in again if e["event"] == "token"
    ]
    assert first[-1]["tokens"] != other[-1]["tokens"]


def reference_probs(lm: Any, ids: list[int], setting: dict[str, Any]) -> np.ndarray:
    """transformers' warpers, in their own order, on the teacher-forced logits of ``ids``."""
    model, _ = lm
    x = torch.tensor([ids])
    with torch.no_grad():
        z = model(input_ids=x).logits[:, -1].float()
    warpers = [TemperatureLogitsWarper(setting["temperature"])]
    if setting.get("top_k"):
        warpers.append(TopKLogitsWarper(setting["top_k"]))
    if setting.get("top_p", 1.0) < 1.0:
        warpers.append(TopPLogitsWarper(setting["top_p"]))
    if setting.get("min_p"):
        warpers.append(MinPLogitsWarper(setting["min_p"]))
    for w in warpers:
        z = w(x, z)
    return np.asarray(torch.softmax(z.double(), dim=-1)[0].tolist())


@pytest.mark.parametrize("setting", SETTINGS[1:3])
def test_each_steps_distribution_is_the_chains(
    client: TestClient, lm: Any, setting: dict[str, Any]
) -> None:
    _, tokenizer = lm
    events = stream(client, **setting, max_new_tokens=6, seed=2, top=12)
    prefix = tokenizer(PROMPT)["input_ids"]
    for e in events[1:-1]:
        expected = reference_probs(lm, prefix, setting)
        got = np.array(e["top_probabilities"])
        np.testing.assert_allclose(got, expected[e["top_ids"]], rtol=0, atol=2e-5)
        np.testing.assert_allclose(got, np.sort(expected)[::-1][:12], rtol=0, atol=2e-5)
        assert e["probability"] == pytest.approx(expected[e["token_id"]], abs=2e-5)
        assert expected[e["token_id"]] > 0  # a removed token is never drawn
        assert e["logprob"] == pytest.approx(
            math.log(reference_probs(lm, prefix, {"temperature": 1.0})[e["token_id"]]), abs=1e-4
        )
        assert e["top_tokens"] == [tokenizer.decode([i]) for i in e["top_ids"]]
        prefix = [*prefix, e["token_id"]]


def test_zero_temperature_streams_the_greedy_tokens_with_probability_one(
    client: TestClient, lm: Any
) -> None:
    model, tokenizer = lm
    events = stream(client, temperature=0.0, max_new_tokens=10, seed=0, top=3)
    ids = tokenizer(PROMPT)["input_ids"]
    for e in events[1:-1]:
        with torch.no_grad():
            z = model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert e["token_id"] == int(torch.argmax(z))
        assert e["probability"] == 1.0
        assert e["top_probabilities"][0] == 1.0
        ids.append(e["token_id"])


def test_next_token_after_a_continuation_is_that_steps_distribution(
    client: TestClient, lm: Any
) -> None:
    model, tokenizer = lm
    setting = {"temperature": 0.8, "top_p": 0.9}
    events = stream(client, **setting, max_new_tokens=8, seed=4, top=5)
    drawn = events[-1]["tokens"]
    prefix = tokenizer(PROMPT)["input_ids"]
    for k in (0, 3, 7):
        r = client.post(
            "/api/next-token", json={"prompt": PROMPT, "top": 5, "continuation": drawn[:k]}
        )
        out = r.json()
        with torch.no_grad():
            z = model(input_ids=torch.tensor([prefix + drawn[:k]])).logits[0, -1].double()
        np.testing.assert_allclose(out["logits"], z.tolist(), rtol=0, atol=2e-5)
        assert out["prompt_tokens"] == len(prefix)
        # The stream reported this step's distribution after the chain from the same logits.
        expected = reference_probs(lm, prefix + drawn[:k], setting)
        step = events[1 + k]
        np.testing.assert_allclose(
            step["top_probabilities"], expected[step["top_ids"]], rtol=0, atol=2e-5
        )


@pytest.mark.parametrize(
    ("continuation", "status"),
    [([-1], 422), ([4096], 422), (["5"], 422), ([1.5], 422), ([1] * 33, 422)],
)
def test_bad_continuations_are_refused_naming_continuation(
    client: TestClient, continuation: list[Any], status: int
) -> None:
    r = client.post("/api/next-token", json={"prompt": PROMPT, "continuation": continuation})
    assert "`continuation" in detail_of(r, status)


# -- the backend's stream ----------------------------------------------------------------


def test_leaving_the_loop_cancels_the_generation_and_frees_the_model(
    backend: ModelBackend,
) -> None:
    s = backend.stream(PROMPT, max_new_tokens=30, seed=0)
    for step in s:
        if step.step == 2:
            break
    # The thread stops at its next step and lets the next request in.
    after = backend.stream(PROMPT, max_new_tokens=3, seed=0)
    assert [t.step for t in after] == [0, 1, 2]
    assert s.stopped == "cancelled"
    assert 3 <= len(s.tokens) < 30


def test_the_backend_restores_torchs_thread_setting(backend: ModelBackend) -> None:
    before = torch.get_num_threads()
    assert backend.threads == 1
    backend.next_token(PROMPT)
    list(backend.stream(PROMPT, max_new_tokens=2))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_bad_thread_counts_are_refused_by_name(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="`threads`"):
        ModelBackend(threads=value)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens"),
        ({"seed": -1}, ValueError, "seed"),
        ({"top": 0}, ValueError, "top"),
        ({"temperature": -0.5}, ValueError, "temperature"),
        ({"top_p": 0.0}, ValueError, "top_p"),
    ],
)
def test_bad_backend_stream_arguments_are_refused_by_name(
    backend: ModelBackend, kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=f"`{name}`"):
        backend.stream(PROMPT, **kwargs)


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "y" * 1501}, "prompt"),
        ({"prompt": "x = 1\n" * 200}, "prompt"),
        ({"prompt": PROMPT, "max_new_tokens": 33}, "max_new_tokens"),
        ({"prompt": PROMPT, "max_new_tokens": 0}, "max_new_tokens"),
        ({"prompt": PROMPT, "temperature": -1}, "temperature"),
        ({"prompt": PROMPT, "temperature": "hot"}, "temperature"),
        ({"prompt": PROMPT, "top_k": -1}, "top_k"),
        ({"prompt": PROMPT, "top_p": 1.5}, "top_p"),
        ({"prompt": PROMPT, "min_p": 2}, "min_p"),
        ({"prompt": PROMPT, "seed": -1}, "seed"),
        ({"prompt": PROMPT, "seed": True}, "seed"),
        ({"prompt": PROMPT, "top": 0}, "top"),
        ({"prompt": PROMPT, "top": 101}, "top"),
        ({"prompt": PROMPT, "n": 2}, "n"),
    ],
)
def test_bad_stream_requests_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    assert f"`{field}`" in detail_of(client.post("/api/generate-stream", json=body))


def test_a_lone_surrogate_in_the_prompt_is_422(client: TestClient) -> None:
    body = b'{"prompt": "import \\ud800"}'
    r = client.post(
        "/api/generate-stream", content=body, headers={"Content-Type": "application/json"}
    )
    assert "`prompt`" in detail_of(r)


def test_max_new_tokens_past_the_context_is_422(client: TestClient, lm: Any) -> None:
    model, tokenizer = lm
    prompt = "x = 1\n"
    while len(tokenizer(prompt).input_ids) < model.config.n_positions - 16:
        prompt += "x = 1\n"
    r = client.post("/api/generate-stream", json={"prompt": prompt, "max_new_tokens": 32})
    assert "`max_new_tokens`" in detail_of(r)


def test_the_stream_is_503_without_a_model() -> None:
    with TestClient(create_app(None)) as bare:
        r = bare.post("/api/generate-stream", json={"prompt": PROMPT})
        assert "no model" in detail_of(r, 503)


def test_the_stream_is_declared_in_the_openapi_schema(client: TestClient) -> None:
    route = client.get("/openapi.json").json()["paths"]["/api/generate-stream"]["post"]
    assert "application/x-ndjson" in route["responses"]["200"]["content"]
    assert {"422", "503"} <= set(route["responses"])


def test_a_full_model_queue_is_429_before_the_stream_starts() -> None:
    busy = ModelBackend(max_waiting=1)
    busy.load()
    with TestClient(create_app(busy, limits=LIMITS)) as c:
        busy._join_queue()  # one request waiting already: the queue is full
        try:
            r = c.post("/api/generate-stream", json={"prompt": PROMPT, "max_new_tokens": 2})
        finally:
            busy._leave_queue()
        assert "busy" in detail_of(r, 429)
        assert int(r.headers["Retry-After"]) >= 1
        assert stream(c, max_new_tokens=2)[-1]["event"] == "end"


def test_a_failure_after_the_first_line_ends_the_stream_with_an_error_line() -> None:
    from thermoscope.explorer.app import _ndjson
    from thermoscope.explorer.backend import TokenStream
    from thermoscope.explorer.schemas import StreamStart

    failing = TokenStream(prompt_tokens=3, max_new_tokens=5)
    failing._events.put(RuntimeError("the model ran out of memory"))
    failing._events.put(None)
    start = StreamStart(model="m", prompt_tokens=3, max_new_tokens=5, seed=0)
    lines = [json.loads(line) for line in _ndjson(start, failing)]
    assert [e["event"] for e in lines] == ["start", "error"]
    assert lines[-1]["detail"] == "the model ran out of memory"
