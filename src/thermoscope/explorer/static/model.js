/*
 * The explorer's model mode: a prompt, its next-token distribution (handed to
 * the page's bars through host.show), a continuation streamed token by token
 * from POST /api/generate-stream, each step's distribution, and seeded draws
 * of the next token.
 * explorer.js calls ThermoscopeModel.init(host) once and model.opened() when
 * the Model tab opens; host = { info, state, setStatus, show }.
 */
(function (root) {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const DEFAULT_PROMPT = "import os\nimport";
  // Probability bins of the token colours: [lower bound, background, legend text].
  // Light backgrounds keep black text above 7:1 contrast.
  const BINS = [
    [0.9, "#a9d3f5", "≥ 90%"],
    [0.5, "#c4e7bd", "50-90%"],
    [0.2, "#fff1a8", "20-50%"],
    [0.05, "#fdd6a4", "5-20%"],
    [0, "#f8b4a8", "< 5%"],
  ];

  // Whitespace made visible, so that a token's boundaries show.
  function showToken(text) {
    return text.replace(/\n/g, "↵").replace(/\t/g, "→").replace(/ /g, "·");
  }

  function colourOf(p) {
    return BINS.find((b) => p >= b[0])[1];
  }

  // 3 significant digits as a percentage; the exact value goes in a title.
  function pct(p) {
    return `${(100 * p).toPrecision(3)}%`;
  }

  // A shell word for the prompt: $'...' when it holds a newline or tab.
  function shellWord(text) {
    if (/[\n\t]/.test(text)) {
      return `$'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n").replace(/\t/g, "\\t")}'`;
    }
    return `'${text.replace(/'/g, "'\\''")}'`;
  }

  // The CLI command that draws the same tokens (settings that are off are left out).
  function cliCommand(state) {
    const parts = ["thermoscope generate --prompt", shellWord(state.prompt), "-n 1", `-t ${state.temperature}`];
    if (state.topK > 0) parts.push(`--top-k ${state.topK}`);
    if (state.topP < 1) parts.push(`--top-p ${state.topP}`);
    if (state.minP > 0) parts.push(`--min-p ${state.minP}`);
    parts.push(`--seed ${state.seed}`, `--max-new-tokens ${state.maxNewTokens}`);
    return parts.join(" ");
  }

  async function refusal(r) {
    const data = await r.json().catch(() => ({ detail: r.statusText }));
    return new Error(typeof data.detail === "string" ? data.detail : `HTTP ${r.status}`);
  }

  async function postJson(path, body) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw await refusal(r);
    return r.json();
  }

  // POST `body` to the stream route and call onEvent(event) for each line as it arrives.
  async function streamJson(path, body, signal, onEvent) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
    if (!r.ok) throw await refusal(r);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 1);
        if (line.trim()) onEvent(JSON.parse(line));
      }
    }
  }

  function legend() {
    const el = $("token-legend");
    el.replaceChildren();
    const title = document.createElement("span");
    title.textContent = "Token colour: the probability it was drawn with";
    el.append(title);
    for (const [, colour, text] of BINS.slice().reverse()) {
      const item = document.createElement("span");
      const key = document.createElement("span");
      key.className = "key";
      key.style.background = colour;
      item.append(key, text);
      el.append(item);
    }
  }

  function init(host) {
    const { info, state, setStatus } = host;
    const S = root.ThermoscopeState;
    // The prompt's next-token vector on the bars: { prompt, logits, labelOf }.
    let modelVector = null;
    // The stream being read (its AbortController) and the steps received.
    let running = null;
    let steps = [];

    // The bars show the prompt's next token, or (continuation = the ids drawn before
    // a step) that step of the last generation.
    async function fetchLogits(continuation) {
      if (!state.prompt.trim()) {
        setStatus("Type a prompt first.", true);
        return;
      }
      const after = Array.isArray(continuation) ? continuation : [];
      setStatus("Computing the next-token logits…");
      $("fetch-logits").disabled = true;
      try {
        const sent = state.prompt;
        const data = await postJson("/api/next-token", { prompt: sent, top: 100, continuation: after });
        const names = new Map(data.top_ids.map((id, j) => [id, data.top_tokens[j]]));
        modelVector = {
          prompt: sent,
          step: after.length,
          logits: data.logits,
          // Ids without text (padding beyond the tokenizer's vocabulary) show as #id.
          labelOf: (i) => (names.has(i) ? showToken(names.get(i)) : `#${i}`),
          nameOf: (i) => (names.has(i) ? names.get(i) : `#${i}`),
        };
        const where = after.length
          ? `step ${after.length + 1} of the generation (after the prompt and ${after.length} drawn tokens)`
          : `the token after the prompt's ${data.prompt_tokens} tokens`;
        setStatus(`${data.model}: the bars show ${where}; ${data.logits.length} tokens in the vocabulary.`);
        host.show();
        document.body.dataset.modelReady = "true";
        document.body.dataset.modelFetches = String(Number(document.body.dataset.modelFetches || 0) + 1);
      } catch (err) {
        setStatus(err.message, true);
      } finally {
        $("fetch-logits").disabled = false;
      }
    }

    // -- one step's distribution -----------------------------------------------------

    function showStep(k) {
      const step = steps[k];
      if (!step) return;
      // One tab stop for the whole continuation (the shown token); arrows move along it.
      for (const el of document.querySelectorAll("#sample-output .tok.selected")) {
        el.classList.remove("selected");
        el.tabIndex = -1;
      }
      const tok = document.querySelector(`#sample-output .tok[data-step="${k}"]`);
      if (tok) {
        tok.classList.add("selected");
        tok.tabIndex = 0;
      }
      $("step-view").hidden = false;
      $("step-view").dataset.step = String(k);
      $("step-to-bars").textContent = `Show step ${k + 1} on the bars`;
      $("step-title").textContent =
        `Step ${k + 1}: drew “${showToken(step.text || "")}” (id ${step.token_id}) with probability ` +
        `${pct(step.probability)}; model at T = 1: ${pct(Math.exp(step.logprob))}. Its ${step.top_ids.length} likeliest tokens after the chain:`;
      const list = $("step-bars");
      list.replaceChildren();
      const rows = step.top_ids.map((id, j) => [id, step.top_tokens[j], step.top_probabilities[j]]);
      if (!step.top_ids.includes(step.token_id)) rows.push([step.token_id, step.text, step.probability]);
      for (const [id, text, p] of rows) {
        const li = document.createElement("li");
        li.dataset.id = String(id);
        li.dataset.p = String(p);
        const chosen = id === step.token_id;
        if (chosen) li.className = "chosen";
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = (chosen ? "▶ " : "  ") + showToken(text);
        const track = document.createElement("span");
        track.className = "track";
        const fill = document.createElement("span");
        fill.className = "fill";
        // An absolute axis: the full track is probability 1.
        fill.style.width = `${100 * p}%`;
        track.append(fill);
        const num = document.createElement("span");
        num.className = "num";
        num.textContent = pct(p);
        num.title = String(p);
        li.append(name, track, num);
        if (chosen) li.setAttribute("aria-label", `chosen token ${showToken(text)}, probability ${pct(p)}`);
        list.append(li);
      }
    }

    // -- the stream --------------------------------------------------------------------

    function addToken(cont, step) {
      const span = document.createElement("span");
      span.className = step.text.includes("\n") ? "tok nl" : "tok";
      span.textContent = step.text;
      span.tabIndex = -1;
      span.dataset.step = String(step.step);
      span.dataset.id = String(step.token_id);
      span.dataset.p = String(step.probability);
      span.style.background = colourOf(step.probability);
      span.title = `token ${step.step + 1}: id ${step.token_id}, p = ${step.probability}`;
      span.setAttribute("role", "button");
      span.setAttribute("aria-label", `token ${step.step + 1} “${showToken(step.text)}”, probability ${pct(step.probability)}`);
      cont.append(span);
    }

    async function generate() {
      if (!state.prompt.trim()) {
        setStatus("Type a prompt first.", true);
        return;
      }
      if (running) running.abort();
      const controller = new AbortController();
      running = controller;
      const out = $("sample-output");
      out.replaceChildren();
      delete out.dataset.tokens;
      out.dataset.streamed = "0";
      const prompt = document.createElement("span");
      prompt.className = "prompt";
      prompt.textContent = state.prompt;
      const cont = document.createElement("span");
      cont.className = "continuation";
      out.append(prompt, cont);
      steps = [];
      $("step-view").hidden = true;
      $("stream-stats").textContent = "";
      $("cli-command").textContent = cliCommand(state);
      setStatus("Generating…");
      document.body.dataset.streaming = "true";
      $("stop-button").disabled = false;
      const started = performance.now();
      let firstMs = null;
      try {
        await streamJson(
          "/api/generate-stream",
          {
            prompt: state.prompt,
            ...S.apiSetting(state),
            max_new_tokens: state.maxNewTokens,
            seed: state.seed,
            top: 10,
          },
          controller.signal,
          (event) => {
            if (event.event === "token") {
              if (firstMs === null) firstMs = performance.now() - started;
              steps.push(event);
              addToken(cont, event);
              out.dataset.streamed = String(steps.length);
              if (steps.length === 1) showStep(0);
            } else if (event.event === "end") {
              // A last character split over tokens shows once it is whole.
              const shown = steps.map((s) => s.text).join("");
              if (event.text.startsWith(shown) && event.text !== shown && cont.lastChild) {
                cont.lastChild.textContent += event.text.slice(shown.length);
              }
              out.dataset.tokens = String(event.tokens.length);
              const why = { eos: "end of sequence", length: "token limit", cancelled: "stopped" }[event.stopped];
              const lp = event.mean_logprob === null ? "" : `; mean log-probability ${event.mean_logprob.toFixed(3)} at T = 1`;
              setStatus(`${event.tokens.length} tokens (${why})${lp}.`);
              const perToken = event.ms_per_token === null ? "" : `, then ${event.ms_per_token.toFixed(1)} ms a token`;
              $("stream-stats").textContent =
                `Server: first token after ${Math.round(event.first_token_ms)} ms${perToken}; ` +
                `page: first token shown after ${Math.round(firstMs)} ms.`;
            } else if (event.event === "error") {
              throw new Error(event.detail);
            }
          },
        );
      } catch (err) {
        if (err.name === "AbortError") setStatus(`Stopped after ${steps.length} tokens.`);
        else setStatus(err.message, true);
      } finally {
        if (running === controller) {
          running = null;
          $("stop-button").disabled = true;
          document.body.dataset.streaming = "false";
        }
      }
    }

    // -- seeded draws of the next token -------------------------------------------------

    async function drawNext() {
      const n = Number($("model-draw-n").value);
      if (!Number.isInteger(n) || n < 1) {
        setStatus("`draws` must be an integer >= 1.", true);
        return;
      }
      if (!modelVector || modelVector.prompt !== state.prompt) await fetchLogits();
      if (!modelVector) return;
      setStatus("Drawing…");
      $("model-draw-button").disabled = true;
      try {
        const data = await postJson("/api/draw", {
          logits: modelVector.logits.map((v) => (v === -Infinity ? null : v)),
          ...S.apiSetting(state),
          n,
          seed: state.seed,
        });
        const order = data.counts.map((_, i) => i).filter((i) => data.counts[i] > 0);
        order.sort((a, b) => data.counts[b] - data.counts[a] || a - b);
        const table = $("model-draws");
        table.replaceChildren();
        const caption = document.createElement("caption");
        const which = modelVector.step ? `step ${modelVector.step + 1}'s token` : "the next token";
        caption.textContent = `${data.n} seeded draws (seed ${data.seed}) of ${which}`;
        const head = document.createElement("tr");
        for (const h of ["token", "count", "share", "probability"]) {
          const th = document.createElement("th");
          th.scope = "col";
          th.textContent = h;
          head.append(th);
        }
        table.append(caption, head);
        for (const i of order.slice(0, 12)) {
          const tr = document.createElement("tr");
          tr.dataset.id = String(i);
          tr.dataset.count = String(data.counts[i]);
          const cells = [showToken(modelVector.nameOf(i)), String(data.counts[i]), pct(data.counts[i] / data.n), pct(data.probabilities[i])];
          for (const c of cells) {
            const td = document.createElement("td");
            td.textContent = c;
            tr.append(td);
          }
          table.append(tr);
        }
        const p = data.chi_square_p === null ? "one possible token" : `chi-square p = ${data.chi_square_p.toFixed(4)}`;
        setStatus(`${data.n} draws of the next token: ${order.length} distinct tokens; ${p}.`);
        document.body.dataset.modelDraws = String(Number(document.body.dataset.modelDraws || 0) + 1);
      } catch (err) {
        setStatus(err.message, true);
      } finally {
        $("model-draw-button").disabled = false;
      }
    }

    // -- wiring ---------------------------------------------------------------------------

    legend();
    if (!state.prompt) state.prompt = DEFAULT_PROMPT;
    $("model-name").textContent = info.model ? `(${info.model})` : "(no model on this server)";
    $("max-new-tokens").max = String(info.limits.max_new_tokens);
    $("prompt").value = state.prompt;
    $("max-new-tokens").value = String(state.maxNewTokens);
    $("seed").value = String(state.seed);
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
    $("fetch-logits").addEventListener("click", () => fetchLogits());
    // The step's full distribution on the bars, where the sliders change it.
    $("step-to-bars").addEventListener("click", () => {
      const k = Number($("step-view").dataset.step);
      fetchLogits(steps.slice(0, k).map((s) => s.token_id));
    });
    $("sample-button").addEventListener("click", generate);
    $("stop-button").addEventListener("click", () => running && running.abort());
    $("model-draw-button").addEventListener("click", drawNext);
    // A token shows its step when clicked or focused (Tab, then Enter or Space).
    const out = $("sample-output");
    const stepOf = (e) => {
      const tok = e.target.closest && e.target.closest(".tok");
      return tok ? Number(tok.dataset.step) : null;
    };
    out.addEventListener("click", (e) => {
      const k = stepOf(e);
      if (k !== null) showStep(k);
    });
    out.addEventListener("focusin", (e) => {
      const k = stepOf(e);
      if (k !== null) showStep(k);
    });
    out.addEventListener("keydown", (e) => {
      const k = stepOf(e);
      if (k === null) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        showStep(k);
      } else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        const next = document.querySelector(`#sample-output .tok[data-step="${k + (e.key === "ArrowRight" ? 1 : -1)}"]`);
        if (next) {
          e.preventDefault();
          next.focus();
        }
      }
    });

    return {
      // The vector the bars show in model mode (null before the first fetch).
      vector: () => modelVector,
      // The Model tab opened: fetch the prompt's distribution once.
      opened: () => {
        if (!modelVector && state.prompt.trim()) fetchLogits();
      },
    };
  }

  root.ThermoscopeModel = { init };
})(self);
