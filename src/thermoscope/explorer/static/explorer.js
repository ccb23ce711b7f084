/*
 * The explorer page: inputs -> state -> URL, and state -> bars and numbers.
 * All sampling arithmetic is in sampling.js (ThermoscopeMath), the state, its
 * controls and its URL in state.js (ThermoscopeState); the server is asked
 * only for a model's next-token logits, seeded draws and sampled continuations.
 */
(function () {
  "use strict";
  const M = window.ThermoscopeMath;
  const S = window.ThermoscopeState;
  const MAX_BARS = { logits: 60, model: 40 };
  const $ = (id) => document.getElementById(id);

  const info = { examples: [], limits: { max_logits: 4096, max_new_tokens: 200 }, model: null };
  const state = S.initialState();
  const controls = S.CONTROLS;
  // The vector on screen: its logits and a label for each token (labelOf(i)).
  let vector = null;
  let modelVector = null;
  // The last draws from the server, shown while the vector and setting they were drawn for are.
  let draws = null;

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text || "";
    el.classList.toggle("error", Boolean(isError));
  }

  // -- vectors -------------------------------------------------------------------

  function logitsVector() {
    const z = M.parseLogits(state.logitsText, info.limits.max_logits);
    let labels = state.labelsText
      .split(",")
      .map((s) => s.trim())
      .filter((s, i, all) => !(all.length === 1 && s === ""));
    if (labels.length === 0) labels = z.map((_, i) => String(i));
    if (labels.length !== z.length) {
      throw new Error(`\`labels\` must have one entry per logit (${z.length}), got ${labels.length}.`);
    }
    return { logits: z, labelOf: (i) => labels[i] };
  }

  function showToken(text) {
    return text.replace(/\n/g, "↵").replace(/\t/g, "→").replace(/ /g, "·");
  }

  function refreshVector() {
    if (state.mode === "model") {
      vector = modelVector;
      return;
    }
    try {
      vector = logitsVector();
      $("logits-input").classList.remove("invalid");
      setStatus("");
    } catch (err) {
      vector = null;
      $("logits-input").classList.add("invalid");
      setStatus(err.message, true);
    }
  }

  // -- rendering --------------------------------------------------------------------

  function shownIndices(z, limit) {
    const idx = z.map((_, i) => i);
    if (z.length <= limit && state.mode === "logits") return idx;
    // Highest logits first; stable, like numpy's argsort(-z, kind="stable").
    idx.sort((a, b) => (z[b] - z[a]) || (a - b));
    return idx.slice(0, limit);
  }

  function fmt(x) {
    return x.toFixed(6);
  }

  // What a set of draws depends on: the logits and the setting.
  function drawKey() {
    if (!vector) return "";
    return JSON.stringify([vector.logits, state.temperature, state.topK, state.topP, state.minP]);
  }

  function render() {
    const bars = $("bars");
    bars.replaceChildren();
    if (!vector) {
      for (const id of ["stat-entropy", "stat-nucleus", "stat-kept", "stat-max"]) $(id).textContent = "–";
      $("bars-note").textContent = state.mode === "model" ? "Ask for the next-token distribution of a prompt." : "";
      return;
    }
    const z = vector.logits;
    const s = M.summarize(z, {
      temperature: state.temperature,
      topK: state.topK,
      topP: state.topP,
      minP: state.minP,
    });
    $("stat-entropy").textContent = fmt(s.entropy);
    $("stat-nucleus").textContent = fmt(s.nucleusMass);
    $("stat-kept").textContent = `${s.keptCount} of ${z.length}`;
    $("stat-max").textContent = fmt(s.maxProbability);
    const shown = shownIndices(z, MAX_BARS[state.mode]);
    $("bars-note").textContent =
      shown.length < z.length ? `Showing the ${shown.length} most likely of ${z.length} tokens.` : "";
    const drawn = draws !== null && draws.key === drawKey() ? draws : null;
    let top = 0;
    for (const i of shown) {
      top = Math.max(top, s.probabilities[i], s.tempered[i], drawn ? drawn.counts[i] / drawn.n : 0);
    }
    for (const i of shown) {
      const row = document.createElement("div");
      row.className = s.kept[i] ? "bar-row" : "bar-row removed";
      row.dataset.index = String(i);
      row.dataset.p = String(s.probabilities[i]);
      row.dataset.kept = String(s.kept[i]);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = state.mode === "model" ? showToken(vector.labelOf(i)) : vector.labelOf(i);
      label.title = `logit ${z[i]}`;
      const track = document.createElement("span");
      track.className = "track";
      const ghost = document.createElement("span");
      ghost.className = "ghost";
      ghost.style.width = `${top > 0 ? (100 * s.tempered[i]) / top : 0}%`;
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = `${top > 0 ? (100 * s.probabilities[i]) / top : 0}%`;
      track.append(ghost, fill);
      if (drawn) {
        const freq = document.createElement("span");
        freq.className = "freq";
        freq.style.left = `${top > 0 ? (100 * drawn.counts[i]) / drawn.n / top : 0}%`;
        track.append(freq);
        row.dataset.count = String(drawn.counts[i]);
        track.title = `${drawn.counts[i]} of ${drawn.n} draws`;
      }
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = fmt(s.probabilities[i]);
      row.append(label, track, value);
      bars.append(row);
    }
  }

  // The top-k slider spans the vector's length (and a typed k beyond it).
  function fitTopK() {
    const n = vector ? vector.logits.length : 1;
    $("top-k-slider").max = String(Math.max(n, state.topK, 1));
    $("top-k-slider").value = String(state.topK);
  }

  function syncControls() {
    fitTopK();
    for (const [name, c] of Object.entries(controls)) {
      $(c.slider).value = String(state[name]);
      $(c.box).value = String(state[name]);
      $(c.box).classList.remove("invalid");
    }
  }

  function update() {
    refreshVector();
    fitTopK();
    render();
    S.writeUrl(state);
  }

  // -- server calls ------------------------------------------------------------------

  async function postJson(path, body) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({ detail: r.statusText }));
    if (!r.ok) throw new Error(typeof data.detail === "string" ? data.detail : `HTTP ${r.status}`);
    return data;
  }

  async function fetchLogits() {
    if (!state.prompt.trim()) {
      setStatus("Type a prompt first.", true);
      return;
    }
    setStatus("Computing the next-token logits…");
    $("fetch-logits").disabled = true;
    try {
      const sent = state.prompt;
      const data = await postJson("/api/next-token", { prompt: sent, top: 100 });
      const names = new Map(data.top_ids.map((id, j) => [id, data.top_tokens[j]]));
      modelVector = {
        prompt: sent,
        logits: data.logits,
        // Ids without text (padding beyond the tokenizer's vocabulary) show as #id.
        labelOf: (i) => names.get(i) || `#${i}`,
      };
      setStatus(`${data.model}: ${data.prompt_tokens} prompt tokens, ${data.logits.length} in the vocabulary.`);
      syncControls();
      update();
      document.body.dataset.modelReady = "true";
      document.body.dataset.modelFetches = String(Number(document.body.dataset.modelFetches || 0) + 1);
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      $("fetch-logits").disabled = false;
    }
  }

  async function drawSamples() {
    if (!vector || state.mode !== "logits") return;
    const n = Number($("draw-n").value);
    const seed = Number($("draw-seed").value);
    if (!Number.isInteger(n) || n < 1 || !Number.isInteger(seed) || seed < 0) {
      setStatus("`draws` must be an integer >= 1 and `seed` an integer >= 0.", true);
      return;
    }
    const key = drawKey();
    setStatus("Drawing…");
    $("draw-button").disabled = true;
    try {
      const data = await postJson("/api/draw", {
        logits: vector.logits.map((v) => (v === -Infinity ? null : v)),
        ...S.apiSetting(state),
        n,
        seed,
      });
      draws = { key, counts: data.counts, n: data.n };
      const p = data.chi_square_p === null ? "one possible token" : `chi-square p = ${data.chi_square_p.toFixed(4)}`;
      render();
      setStatus(`${data.n} draws (seed ${data.seed}) from the sampler: ${p}.`);
      document.body.dataset.draws = String(Number(document.body.dataset.draws || 0) + 1);
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      $("draw-button").disabled = false;
    }
  }

  async function sampleContinuation() {
    if (!state.prompt.trim()) {
      setStatus("Type a prompt first.", true);
      return;
    }
    const out = $("sample-output");
    setStatus("Sampling…");
    $("sample-button").disabled = true;
    try {
      const data = await postJson("/api/sample", {
        prompt: state.prompt,
        ...S.apiSetting(state),
        max_new_tokens: state.maxNewTokens,
        seed: state.seed,
      });
      out.replaceChildren();
      const prompt = document.createElement("span");
      prompt.className = "prompt";
      prompt.textContent = state.prompt;
      const cont = document.createElement("span");
      cont.className = "continuation";
      cont.textContent = data.text;
      out.append(prompt, cont);
      out.dataset.tokens = String(data.tokens.length);
      setStatus(`${data.tokens.length} tokens sampled; mean log-probability ${data.mean_logprob.toFixed(3)} at T = 1.`);
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      $("sample-button").disabled = false;
    }
  }

  // -- wiring ---------------------------------------------------------------------------

  function setMode(mode) {
    state.mode = mode;
    for (const b of document.querySelectorAll(".tabs button")) {
      b.setAttribute("aria-selected", String(b.dataset.mode === mode));
    }
    $("logits-panel").hidden = mode !== "logits";
    $("model-panel").hidden = mode !== "model";
    setStatus("");
    refreshVector();
    syncControls();
    update();
    if (mode === "model" && !modelVector && state.prompt.trim()) fetchLogits();
  }

  function wireControl(name, c) {
    $(c.slider).addEventListener("input", (e) => {
      state[name] = c.parse(e.target.value);
      $(c.box).value = e.target.value;
      $(c.box).classList.remove("invalid");
      setStatus("");
      update();
    });
    $(c.box).addEventListener("input", (e) => {
      try {
        state[name] = c.parse(e.target.value);
      } catch (err) {
        e.target.classList.add("invalid");
        setStatus(err.message, true);
        return;
      }
      e.target.classList.remove("invalid");
      $(c.slider).value = String(state[name]);
      setStatus("");
      update();
    });
  }

  function fillExamples() {
    const select = $("example");
    const custom = document.createElement("option");
    custom.value = "";
    custom.textContent = "(your own logits)";
    select.append(custom);
    for (const p of info.examples) {
      const o = document.createElement("option");
      o.value = p.name;
      o.textContent = `${p.name}: ${p.description}`;
      select.append(o);
    }
    select.addEventListener("change", () => {
      const p = info.examples.find((x) => x.name === select.value);
      if (!p) return;
      state.logitsText = p.logits.join(", ");
      state.labelsText = p.labels.join(", ");
      $("logits-input").value = state.logitsText;
      $("labels-input").value = state.labelsText;
      refreshVector();
      syncControls();
      update();
    });
  }

  // The example the inputs hold, compared as numbers and trimmed labels.
  function matchExample() {
    const words = (text) => text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    let z = null;
    try {
      z = M.parseLogits(state.logitsText, info.limits.max_logits);
    } catch (err) {
      z = null;
    }
    const labels = words(state.labelsText);
    const p = info.examples.find(
      (x) =>
        z !== null &&
        x.logits.length === z.length &&
        x.logits.every((v, i) => v === z[i]) &&
        x.labels.join("\u0000") === labels.join("\u0000"),
    );
    $("example").value = p ? p.name : "";
  }

  async function start() {
    try {
      const r = await fetch("/api/info");
      Object.assign(info, await r.json());
    } catch (err) {
      setStatus(`Could not reach the server: ${err.message}`, true);
    }
    fillExamples();
    if (info.examples.length > 0) {
      state.logitsText = info.examples[0].logits.join(", ");
      state.labelsText = info.examples[0].labels.join(", ");
    }
    state.prompt = "import os\nimport";
    const ignored = S.readUrl(state);
    $("model-name").textContent = info.model ? `(${info.model})` : "(no model on this server)";
    if (!info.model) {
      // A server started with --no-model: logits mode only.
      $("mode-model").disabled = true;
      $("mode-model").title = "This server has no model (started with --no-model).";
      if (state.mode === "model") {
        state.mode = "logits";
        ignored.push("This server has no model: showing the logits mode.");
      }
    }
    $("max-new-tokens").max = String(info.limits.max_new_tokens);
    $("logits-input").value = state.logitsText;
    $("labels-input").value = state.labelsText;
    $("prompt").value = state.prompt;
    $("max-new-tokens").value = String(state.maxNewTokens);
    $("seed").value = String(state.seed);
    matchExample();

    for (const [name, c] of Object.entries(controls)) wireControl(name, c);
    $("logits-input").addEventListener("input", (e) => {
      state.logitsText = e.target.value;
      matchExample();
      refreshVector();
      syncControls();
      update();
    });
    $("labels-input").addEventListener("input", (e) => {
      state.labelsText = e.target.value;
      matchExample();
      update();
    });
    $("prompt").addEventListener("input", (e) => {
      state.prompt = e.target.value;
      S.writeUrl(state);
      const stale = modelVector !== null && modelVector.prompt !== state.prompt;
      setStatus(
        stale ? "The bars show the previous prompt: press “Next-token distribution” (or Ctrl+Enter)." : "",
      );
    });
    $("prompt").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) fetchLogits();
    });
    $("max-new-tokens").addEventListener("input", (e) => {
      const n = Number(e.target.value);
      if (Number.isInteger(n) && n >= 1) state.maxNewTokens = n;
      S.writeUrl(state);
    });
    $("seed").addEventListener("input", (e) => {
      const n = Number(e.target.value);
      if (Number.isInteger(n) && n >= 0) state.seed = n;
      S.writeUrl(state);
    });
    $("fetch-logits").addEventListener("click", fetchLogits);
    $("sample-button").addEventListener("click", sampleContinuation);
    $("draw-button").addEventListener("click", drawSamples);
    for (const b of document.querySelectorAll(".tabs button")) {
      b.addEventListener("click", () => setMode(b.dataset.mode));
    }
    setMode(state.mode);
    if (ignored.length > 0) setStatus(ignored.join(" "), true);
    document.body.dataset.ready = "true";
  }

  start();
})();
