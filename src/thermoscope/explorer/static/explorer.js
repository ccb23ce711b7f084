/*
 * The explorer page: inputs -> state -> URL, and state -> bars, numbers,
 * curves and the chain. All sampling arithmetic is in sampling.js
 * (ThermoscopeMath), the state, its controls and its URL in state.js
 * (ThermoscopeState), model mode in model.js (ThermoscopeModel); the server
 * is asked only for a model's logits, seeded draws and continuations. A
 * static export (window.THERMOSCOPE_STATIC) runs with no server at all.
 */
(function () {
  "use strict";
  const M = window.ThermoscopeMath;
  const S = window.ThermoscopeState;
  const STATIC = window.THERMOSCOPE_STATIC || null;
  const MAX_BARS = { logits: 60, model: 40 };
  // The log-scale axis runs from 10^LOG_MIN to 1.
  const LOG_MIN = -6;
  const REDRAW_DELAY_MS = 200;
  const $ = (id) => document.getElementById(id);

  const info = { examples: [], limits: { max_logits: 4096, max_new_tokens: 200 }, model: null };
  const state = S.initialState();
  const controls = S.CONTROLS;
  // The vector on screen: its logits and a label for each token (labelOf(i)).
  let vector = null;
  // Model mode (model.js, ThermoscopeModel): the prompt, its next-token vector and the stream.
  let model = null;
  // The last draws: { key, counts, n, seed }, redrawn when the vector or the setting change.
  let draws = null;
  let redrawTimer = null;
  // The curves depend on everything but T: kept while only T moves.
  let curveCache = { key: "", data: null };

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text || "";
    el.classList.toggle("error", Boolean(isError));
  }

  // 3-4 significant digits on screen; the full number in the element's title.
  function fmt(x) {
    if (x === 0) return "0";
    if (!Number.isFinite(x)) return String(x);
    const a = Math.abs(x);
    if (a >= 1e-3 && a < 1e4) return String(Number(x.toPrecision(4)));
    return x.toExponential(2);
  }

  function showNumber(el, x) {
    el.textContent = fmt(x);
    el.title = String(x);
    el.dataset.value = String(x);
  }

  function setting() {
    return { temperature: state.temperature, topK: state.topK, topP: state.topP, minP: state.minP };
  }

  // -- vectors -------------------------------------------------------------------

  function splitLabels(text) {
    return text
      .split(",")
      .map((s) => s.trim())
      .filter((s, i, all) => !(all.length === 1 && s === ""));
  }

  function logitsVector() {
    const z = M.parseLogits(state.logitsText, info.limits.max_logits);
    let labels = splitLabels(state.labelsText);
    if (labels.length === 0) labels = z.map((_, i) => String(i));
    if (labels.length !== z.length) {
      throw new Error(`\`labels\` must have one entry per logit (${z.length}), got ${labels.length}.`);
    }
    return { logits: z, labelOf: (i) => labels[i] };
  }

  function refreshVector() {
    if (state.mode === "model") {
      vector = model ? model.vector() : null;
      return;
    }
    try {
      vector = logitsVector();
      $("logits-input").classList.remove("invalid");
      $("logits-input").removeAttribute("aria-invalid");
      setStatus("");
    } catch (err) {
      vector = null;
      $("logits-input").classList.add("invalid");
      $("logits-input").setAttribute("aria-invalid", "true");
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

  // Where probability p sits on the axis, as a fraction of the track (0..1).
  function axisPosition(p) {
    if (!state.logScale) return Math.min(Math.max(p, 0), 1);
    if (p <= 0) return 0;
    return Math.min(Math.max((Math.log10(p) - LOG_MIN) / -LOG_MIN, 0), 1);
  }

  function pct(p) {
    return `${100 * axisPosition(p)}%`;
  }

  function renderAxis() {
    const axis = $("axis");
    axis.replaceChildren();
    const ticks = state.logScale
      ? Array.from({ length: -LOG_MIN + 1 }, (_, j) => 10 ** (LOG_MIN + j))
      : [0, 0.25, 0.5, 0.75, 1];
    const scale = document.createElement("span");
    scale.className = "ticks";
    for (const t of ticks) {
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.style.left = pct(t);
      tick.textContent = state.logScale ? (t === 1 ? "1" : `1e${Math.round(Math.log10(t))}`) : String(t);
      scale.append(tick);
    }
    const name = document.createElement("span");
    name.className = "axis-name";
    name.textContent = state.logScale ? "probability (log)" : "probability";
    axis.append(document.createElement("span"), scale, name);
    $("bars").classList.toggle("log", state.logScale);
  }

  // What a set of draws depends on: the logits, the setting and the order.
  function drawKey() {
    if (!vector) return "";
    return JSON.stringify([vector.logits, state.temperature, state.topK, state.topP, state.minP, state.order]);
  }

  function renderStats(s, z) {
    showNumber($("stat-entropy"), s.entropy);
    showNumber($("stat-nucleus"), s.keptMass);
    $("stat-kept").textContent = `${s.keptCount} of ${z.length}`;
    showNumber($("stat-max"), s.maxProbability);
  }

  function renderBars(s, z) {
    const bars = $("bars");
    bars.replaceChildren();
    const shown = shownIndices(z, MAX_BARS[state.mode]);
    $("bars-note").textContent =
      shown.length < z.length ? `Showing the ${shown.length} most likely of ${z.length} tokens.` : "";
    const drawn = draws !== null && draws.counts.length === z.length ? draws : null;
    const stale = drawn !== null && drawn.key !== drawKey();
    for (const i of shown) {
      const row = document.createElement("div");
      row.className = s.kept[i] ? "bar-row" : "bar-row removed";
      row.dataset.index = String(i);
      row.dataset.p = String(s.probabilities[i]);
      row.dataset.kept = String(s.kept[i]);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = vector.labelOf(i);
      label.title = `logit ${z[i]}`;
      const track = document.createElement("span");
      track.className = "track";
      const ghost = document.createElement("span");
      ghost.className = "ghost";
      ghost.style.width = pct(s.tempered[i]);
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = pct(s.probabilities[i]);
      fill.title = `p = ${s.probabilities[i]} (before truncation ${s.tempered[i]})`;
      track.append(ghost, fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = fmt(s.probabilities[i]);
      value.title = String(s.probabilities[i]);
      row.append(label, track, value);
      if (drawn) {
        const share = drawn.counts[i] / drawn.n;
        const freq = document.createElement("span");
        freq.className = stale ? "freq stale" : "freq";
        freq.style.width = pct(share);
        freq.title = `${drawn.counts[i]} of ${drawn.n} draws (${share})`;
        track.append(freq);
        const count = document.createElement("span");
        count.className = stale ? "count stale" : "count";
        const unit = document.createElement("span");
        unit.className = "unit";
        unit.textContent = " drawn";
        count.append(String(drawn.counts[i]), unit);
        count.title = `${drawn.counts[i]} of ${drawn.n} draws${stale ? " (for the previous setting)" : ""}`;
        value.append(count);
        row.dataset.count = String(drawn.counts[i]);
        row.dataset.stale = String(stale);
      }
      bars.append(row);
    }
  }

  function renderChain(z) {
    const list = $("chain");
    list.replaceChildren();
    const c = M.chain(z, setting(), state.order);
    const what = {
      input: "input: softmax(z)",
      temperature: `temperature T = ${S.show(state.temperature)}`,
      top_k: `top-k, k = ${state.topK}`,
      top_p: `top-p, p = ${state.topP}`,
      min_p: `min-p, min-p = ${state.minP}`,
    };
    const names = (ids) => ids.map((i) => vector.labelOf(i));
    for (const stage of c.stages) {
      const li = document.createElement("li");
      li.dataset.stage = stage.name;
      li.dataset.kept = stage.keptIds.join(",");
      li.dataset.removed = stage.removedIds.join(",");
      li.dataset.removedMass = String(stage.removedMass);
      li.dataset.entropy = String(stage.entropy);
      const head = document.createElement("strong");
      head.textContent = what[stage.name];
      const body = document.createElement("span");
      let text;
      if (stage.name === "input") {
        text = ` ${stage.keptIds.length} tokens`;
      } else if (stage.removedIds.length === 0) {
        text = stage.name === "temperature" ? " reshapes the kept tokens, removes none" : " removes nothing";
      } else {
        // The likeliest removed tokens first: the ones a reader cares about.
        const byLogit = stage.removedIds.slice().sort((a, b) => (z[b] - z[a]) || (a - b));
        const shown = names(byLogit.slice(0, 8)).join(", ");
        const more = stage.removedIds.length > 8 ? ` and ${stage.removedIds.length - 8} more` : "";
        text = ` removes ${shown}${more} (mass ${fmt(stage.removedMass)})`;
      }
      body.textContent = `${text}; ${stage.keptIds.length} left, entropy ${fmt(stage.entropy)} nats`;
      body.title = `removed mass ${stage.removedMass}, entropy ${stage.entropy}`;
      li.append(head, body);
      list.append(li);
    }
  }

  // -- curves -------------------------------------------------------------------------

  const CURVE = { w: 340, h: 150, left: 40, right: 10, top: 10, bottom: 28 };
  const SVG_NS = "http://www.w3.org/2000/svg";

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function curveData(z) {
    const key = JSON.stringify([z, state.topK, state.topP, state.minP, state.order]);
    if (curveCache.key !== key) {
      const points = z.length > 500 ? 33 : 81;
      const temps = Array.from({ length: points }, (_, j) => 10 ** (-2 + (4 * j) / (points - 1)));
      const data = M.curves(z, setting(), state.order, temps);
      data.maxBefore = beforeMax(z, temps);
      curveCache = { key, data };
    }
    return curveCache.data;
  }

  function drawCurve(svg, xs, series, yMax, yLabel, marker) {
    svg.replaceChildren();
    const { w, h, left, right, top, bottom } = CURVE;
    const x = (t) => left + ((Math.log10(t) + 2) / 4) * (w - left - right);
    const y = (v) => top + (1 - v / yMax) * (h - top - bottom);
    for (const t of [0.01, 0.1, 1, 10, 100]) {
      svg.append(svgEl("line", { x1: x(t), x2: x(t), y1: top, y2: h - bottom, class: "grid" }));
      svg.append(svgEl("text", { x: x(t), y: h - bottom + 14, class: "tick", "text-anchor": "middle" }, String(t)));
    }
    for (const v of [0, yMax / 2, yMax]) {
      svg.append(svgEl("line", { x1: left, x2: w - right, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(svgEl("text", { x: left - 4, y: y(v) + 4, class: "tick", "text-anchor": "end" }, fmt(Number(v.toPrecision(2)))));
    }
    svg.append(svgEl("text", { x: w - right, y: h - 2, class: "tick", "text-anchor": "end" }, "T (log scale)"));
    svg.append(svgEl("text", { x: left, y: top - 1, class: "tick" }, yLabel));
    for (const s of series) {
      const d = xs.map((t, j) => `${j === 0 ? "M" : "L"}${x(t).toFixed(1)},${y(s.values[j]).toFixed(1)}`).join("");
      svg.append(svgEl("path", { d, class: s.className }));
    }
    // The current T; 0 and inf sit at the axis' ends.
    const t = marker.t;
    const at = t === 0 ? 0.01 : t === Infinity ? 100 : Math.min(100, Math.max(0.01, t));
    svg.append(svgEl("line", { x1: x(at), x2: x(at), y1: top, y2: h - bottom, class: "marker" }));
    svg.append(svgEl("circle", { cx: x(at), cy: y(marker.value), r: 4, class: "marker-dot" }));
    svg.setAttribute("aria-label", marker.text);
    svg.dataset.value = String(marker.value);
  }

  // The curves need the chain at every T of the grid: when anything but T
  // changed, the bars are drawn first and the curves in the next task.
  let curveTimer = null;

  function renderCurves(z, s) {
    clearTimeout(curveTimer);
    const key = JSON.stringify([z, state.topK, state.topP, state.minP, state.order]);
    if (curveCache.key !== key) {
      curveTimer = setTimeout(() => drawCurves(z, s), 0);
      return;
    }
    drawCurves(z, s);
  }

  function drawCurves(z, s) {
    const d = curveData(z);
    const finite = z.filter((v) => v !== -Infinity).length;
    const hMax = Math.max(Math.log(finite), 0.1);
    const T = S.show(state.temperature);
    drawCurve($("curve-entropy"), d.temperature, [
      { values: d.entropyBefore, className: "before" },
      { values: d.entropy, className: "after" },
    ], hMax, "entropy (nats)", { t: state.temperature, value: s.entropy, text: `Entropy against temperature; at T = ${T} it is ${fmt(s.entropy)} nats after truncation (at most ln ${finite} = ${fmt(Math.log(finite))}).` });
    drawCurve($("curve-max"), d.temperature, [
      { values: d.temperature.map((_, j) => d.maxProbability[j]), className: "after" },
      { values: d.maxBefore, className: "before" },
    ], 1, "max probability", { t: state.temperature, value: s.maxProbability, text: `Largest probability against temperature; at T = ${T} it is ${fmt(s.maxProbability)}.` });
  }

  // max softmax(z / T) before truncation: 1 / sum exp((z - max) / T).
  function beforeMax(z, temps) {
    const m = Math.max(...z);
    return temps.map((t) => {
      let sum = 0;
      for (const v of z) sum += Math.exp((v - m) / t);
      return 1 / sum;
    });
  }

  function render() {
    renderAxis();
    if (!vector) {
      $("bars").replaceChildren();
      $("chain").replaceChildren();
      for (const id of ["stat-entropy", "stat-nucleus", "stat-kept", "stat-max"]) $(id).textContent = "–";
      $("bars-note").textContent = state.mode === "model" ? "Ask for the next-token distribution of a prompt." : "";
      return;
    }
    const z = vector.logits;
    const s = M.summarizeIn(z, setting(), state.order);
    renderStats(s, z);
    renderBars(s, z);
    renderChain(z);
    renderCurves(z, s);
  }

  // The top-k slider spans the vector's length (and a typed k beyond it).
  function fitTopK() {
    const n = vector ? vector.logits.length : 1;
    $("top-k-slider").max = String(Math.max(n, state.topK, 1));
    $("top-k-slider").value = String(state.topK);
  }

  function syncSlider(name, c) {
    $(c.slider).value = S.toSlider(c, state[name]);
    if (name === "temperature") $(c.slider).setAttribute("aria-valuetext", `T = ${S.show(state.temperature)}`);
  }

  function syncControls() {
    fitTopK();
    for (const [name, c] of Object.entries(controls)) {
      syncSlider(name, c);
      $(c.box).value = S.show(state[name]);
      $(c.box).classList.remove("invalid");
      $(c.box).removeAttribute("aria-invalid");
    }
    $(state.order === "llama.cpp" ? "order-llama" : "order-transformers").checked = true;
    $("log-scale").checked = state.logScale;
  }

  function update() {
    refreshVector();
    fitTopK();
    render();
    S.writeUrl(state);
    if (state.draws > 0 && vector && (draws === null || draws.key !== drawKey())) scheduleRedraw();
  }

  // -- draws ----------------------------------------------------------------------------

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

  function scheduleRedraw() {
    clearTimeout(redrawTimer);
    redrawTimer = setTimeout(() => drawSamples(), REDRAW_DELAY_MS);
  }

  function readDrawInputs() {
    const n = Number($("draw-n").value);
    const seed = Number($("draw-seed").value);
    if (!Number.isInteger(n) || n < 1 || n > S.MAX_DRAWS || !Number.isInteger(seed) || seed < 0) {
      throw new Error(`\`draws\` must be an integer in 1..${S.MAX_DRAWS} and \`draw seed\` an integer >= 0.`);
    }
    return { n, seed };
  }

  async function drawSamples() {
    clearTimeout(redrawTimer);
    if (!vector) return;
    if (state.draws < 1) {
      try {
        const asked = readDrawInputs();
        state.draws = asked.n;
        state.drawSeed = asked.seed;
      } catch (err) {
        setStatus(err.message, true);
        return;
      }
      S.writeUrl(state);
    }
    const n = state.draws;
    const seed = state.drawSeed;
    const key = drawKey();
    if (state.temperature === Infinity && !STATIC) {
      setStatus("Draws at T = inf: every kept token is equally likely; type a finite T to draw.", true);
      return;
    }
    $("draw-button").disabled = true;
    try {
      let counts;
      let note;
      if (STATIC) {
        const s = M.summarizeIn(vector.logits, setting(), state.order);
        counts = M.drawCounts(s.probabilities, n, seed);
        note = "from this page's own seeded generator (not numpy's: counts differ from the library's)";
      } else {
        setStatus("Drawing…");
        const data = await postJson("/api/trace", {
          logits: vector.logits.map((v) => (v === -Infinity ? null : v)),
          ...S.apiSetting(state),
          order: state.order,
          n,
          seed,
        });
        counts = data.counts;
        note = `from the sampler: ${
          data.chi_square_p === null ? "one possible token" : `chi-square p = ${data.chi_square_p.toFixed(4)}`
        }`;
      }
      if (key !== drawKey()) return; // the setting moved meanwhile: its own redraw follows
      draws = { key, counts, n, seed };
      render();
      setStatus(`${n} draws (seed ${seed}) ${note}.`);
      document.body.dataset.draws = String(Number(document.body.dataset.draws || 0) + 1);
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      $("draw-button").disabled = false;
    }
  }

  function startDraws() {
    try {
      const { n, seed } = readDrawInputs();
      state.draws = n;
      state.drawSeed = seed;
    } catch (err) {
      setStatus(err.message, true);
      return;
    }
    S.writeUrl(state);
    drawSamples();
  }

  function clearDraws() {
    clearTimeout(redrawTimer);
    state.draws = 0;
    draws = null;
    render();
    S.writeUrl(state);
  }

  // -- wiring ---------------------------------------------------------------------------

  function setMode(mode) {
    state.mode = mode;
    for (const b of document.querySelectorAll(".tabs [role=tab]")) {
      const on = b.dataset.mode === mode;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    }
    $("logits-panel").hidden = mode !== "logits";
    $("model-panel").hidden = mode !== "model";
    setStatus("");
    refreshVector();
    syncControls();
    update();
    if (mode === "model" && model) model.opened();
  }

  // The ARIA tabs pattern: one tab in the Tab order, arrows move between tabs.
  function wireTabs() {
    const tabs = Array.from(document.querySelectorAll(".tabs [role=tab]"));
    $("model-panel").setAttribute("role", "tabpanel");
    $("model-panel").setAttribute("aria-labelledby", "mode-model");
    for (const b of tabs) b.addEventListener("click", () => setMode(b.dataset.mode));
    $("mode-logits").parentElement.addEventListener("keydown", (e) => {
      const usable = tabs.filter((b) => !b.disabled);
      const at = usable.indexOf(document.activeElement);
      if (at < 0) return;
      let next = null;
      if (e.key === "ArrowRight") next = usable[(at + 1) % usable.length];
      else if (e.key === "ArrowLeft") next = usable[(at - 1 + usable.length) % usable.length];
      else if (e.key === "Home") next = usable[0];
      else if (e.key === "End") next = usable[usable.length - 1];
      if (!next) return;
      e.preventDefault();
      next.focus();
      setMode(next.dataset.mode);
    });
  }

  function wireControl(name, c) {
    $(c.slider).addEventListener("input", (e) => {
      state[name] = S.fromSlider(c, e.target.value);
      $(c.box).value = S.show(state[name]);
      $(c.box).classList.remove("invalid");
      $(c.box).removeAttribute("aria-invalid");
      if (name === "temperature") e.target.setAttribute("aria-valuetext", `T = ${S.show(state[name])}`);
      setStatus("");
      update();
    });
    $(c.box).addEventListener("input", (e) => {
      try {
        state[name] = c.parse(e.target.value);
      } catch (err) {
        e.target.classList.add("invalid");
        e.target.setAttribute("aria-invalid", "true");
        setStatus(err.message, true);
        return;
      }
      e.target.classList.remove("invalid");
      e.target.removeAttribute("aria-invalid");
      syncSlider(name, c);
      setStatus("");
      update();
    });
  }

  function setTemperature(t) {
    state.temperature = t;
    syncControls();
    setStatus("");
    update();
  }

  function exampleText(p) {
    return `${p.name}: ${p.description}`;
  }

  function chooseExample(p) {
    state.logitsText = p.logits.join(", ");
    state.labelsText = p.labels.join(", ");
    $("logits-input").value = state.logitsText;
    $("labels-input").value = state.labelsText;
    $("example").value = p.name;
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
      o.textContent = exampleText(p);
      select.append(o);
    }
    select.addEventListener("change", () => {
      const p = info.examples.find((x) => x.name === select.value);
      if (!p) return;
      chooseExample(p);
      refreshVector();
      syncControls();
      update();
    });
  }

  // The example the inputs hold, compared as numbers and trimmed labels.
  function matchExample() {
    let z = null;
    try {
      z = M.parseLogits(state.logitsText, info.limits.max_logits);
    } catch (err) {
      z = null;
    }
    const labels = splitLabels(state.labelsText).filter((s) => s !== "");
    const p = info.examples.find(
      (x) =>
        z !== null &&
        x.logits.length === z.length &&
        x.logits.every((v, i) => v === z[i]) &&
        x.labels.join("\u0000") === labels.join("\u0000"),
    );
    $("example").value = p ? p.name : "";
  }

  // Typing logits after choosing an example: the example's labels, left as
  // they were, go when the number of logits no longer matches them.
  function dropStaleLabels(previousExample) {
    if (!previousExample) return;
    if (state.labelsText !== previousExample.labels.join(", ")) return;
    const count = state.logitsText.split(/[\s,;]+/).filter((x) => x.length > 0).length;
    if (count === previousExample.labels.length) return;
    state.labelsText = "";
    $("labels-input").value = "";
  }

  // -- classic surprises ------------------------------------------------------------------

  const NEXT_WORD = [5.0, 2.2, 2.0, 4.5, 3.0, 2.7];
  const NEXT_WORD_LABELS = ["day", "space", "furniture", "experience", "problem", "challenge"];
  const SURPRISES = [
    {
      title: "min-p after a high temperature keeps everything",
      logits: NEXT_WORD,
      labels: NEXT_WORD_LABELS,
      setting: { temperature: 3, topK: 0, topP: 1, minP: 0.2 },
      text: "At T = 3 with min-p 0.2, transformers (T first) flattens the distribution before min-p looks, so every token passes; llama.cpp's min-p sees the raw logits and keeps",
    },
    {
      title: "the same top-p keeps 2 tokens or 4",
      logits: NEXT_WORD,
      labels: NEXT_WORD_LABELS,
      setting: { temperature: 0.5, topK: 0, topP: 0.9 },
      text: "At T = 0.5 with top-p 0.9, the sharpened distribution reaches 0.9 after few tokens in transformers' order; on the raw one (llama.cpp) it takes more:",
    },
    {
      title: "top-k = 1 keeps two tokens when they tie",
      logits: [3.0, 3.0, 1.5, 0.0, -1.0],
      labels: ["A", "B", "C", "D", "E"],
      setting: { temperature: 1, topK: 1, topP: 1, minP: 0 },
      text: "A cut is a threshold on the value, so a token tied with the k-th is kept (as in transformers); greedy T = 0 keeps both too. Kept",
    },
  ];

  function keptIn(sp, order) {
    const s = { temperature: 1, topK: 0, topP: 1, minP: 0, ...sp.setting };
    return M.summarizeIn(sp.logits, s, order).keptCount;
  }

  function fillSurprises() {
    const list = $("surprises");
    SURPRISES.forEach((sp, j) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.id = `surprise-${j}`;
      b.textContent = sp.title;
      const p = document.createElement("p");
      p.className = "explain";
      const a = keptIn(sp, "transformers");
      const l = keptIn(sp, "llama.cpp");
      p.textContent = `${sp.text} ${j === 2 ? `${a} of ${sp.logits.length}` : `transformers ${a}, llama.cpp ${l}`}. Toggle the order to compare.`;
      b.addEventListener("click", () => {
        state.mode = "logits";
        state.logitsText = sp.logits.join(", ");
        state.labelsText = sp.labels.join(", ");
        Object.assign(state, { temperature: 1, topK: 0, topP: 1, minP: 0 }, sp.setting);
        $("logits-input").value = state.logitsText;
        $("labels-input").value = state.labelsText;
        matchExample();
        setMode("logits");
        $("chart").scrollIntoView({ block: "nearest" });
      });
      li.append(b, p);
      list.append(li);
    });
  }

  function explainStatic() {
    const tab = $("mode-model");
    tab.disabled = true;
    tab.title = "Model mode needs the server: run `thermoscope explore`.";
    const note = document.createElement("p");
    note.className = "explain static-note";
    note.id = "static-note";
    note.textContent =
      "This is a saved copy of the explorer: the logits mode runs entirely in this page. " +
      "Model mode needs a language model: run `thermoscope explore` to use it. " +
      "Draws here use the page's own seeded generator.";
    tab.parentElement.after(note);
  }

  async function loadInfo() {
    if (STATIC) {
      Object.assign(info, STATIC);
      return;
    }
    try {
      const r = await fetch("/api/info");
      Object.assign(info, await r.json());
    } catch (err) {
      setStatus(`Could not reach the server: ${err.message}`, true);
    }
  }

  async function start() {
    await loadInfo();
    fillExamples();
    fillSurprises();
    if (info.examples.length > 0) {
      state.logitsText = info.examples[0].logits.join(", ");
      state.labelsText = info.examples[0].labels.join(", ");
    }
    const ignored = S.readUrl(state);
    if (!STATIC && window.ThermoscopeModel) {
      model = window.ThermoscopeModel.init({
        info,
        state,
        setStatus,
        // The model's vector changed: show it with the current controls.
        show: () => {
          syncControls();
          update();
        },
        draw: () => drawSamples(),
      });
    }
    if (STATIC) {
      explainStatic();
      if (state.mode === "model") state.mode = "logits";
    } else if (!info.model) {
      // A server started with --no-model: logits mode only.
      $("mode-model").disabled = true;
      $("mode-model").title = "This server has no model (started with --no-model).";
      if (state.mode === "model") {
        state.mode = "logits";
        ignored.push("This server has no model: showing the logits mode.");
      }
    }
    $("logits-input").value = state.logitsText;
    $("labels-input").value = state.labelsText;
    if (state.draws > 0) {
      $("draw-n").value = String(state.draws);
      $("draw-seed").value = String(state.drawSeed);
    }
    if (STATIC) $("draw-explain").textContent += " (in this saved copy, by the page's own generator)";
    matchExample();

    for (const [name, c] of Object.entries(controls)) wireControl(name, c);
    for (const b of document.querySelectorAll(".quick button")) {
      b.addEventListener("click", () => setTemperature(S.CONTROLS.temperature.parse(b.dataset.t)));
    }
    $("logits-input").addEventListener("input", (e) => {
      const previous = info.examples.find((x) => x.name === $("example").value);
      state.logitsText = e.target.value;
      dropStaleLabels(previous);
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
    for (const radio of document.querySelectorAll("input[name=order]")) {
      radio.addEventListener("change", () => {
        state.order = radio.value;
        update();
      });
    }
    $("log-scale").addEventListener("change", (e) => {
      state.logScale = e.target.checked;
      update();
    });
    $("draw-button").addEventListener("click", startDraws);
    $("clear-draws").addEventListener("click", clearDraws);
    wireTabs();
    setMode(state.mode);
    if (ignored.length > 0) setStatus(ignored.join(" "), true);
    document.body.dataset.ready = "true";
  }

  start();
})();
