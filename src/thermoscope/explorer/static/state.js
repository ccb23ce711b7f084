/*
 * The explorer page's state and its URL: the four sampling controls (each
 * with its one parse rule and message), the initial state, and the query
 * string that makes a view shareable (?mode=&logits=&labels=&t=&k=&p=&minp=
 * in logits mode; ?mode=model&prompt=&n=&seed=&t=... in model mode; in both,
 * &order=llama.cpp, &scale=log and the draws &draws=N&dseed=S when shown).
 */
(function (root) {
  "use strict";

  function number(v, ok, message) {
    const x = Number(v);
    if (v === "" || !ok(x)) throw new Error(message);
    return x;
  }

  // A temperature as typed: a number >= 0, or inf (also "Infinity", "∞").
  function temperatureOf(v) {
    const text = String(v).trim().toLowerCase();
    if (text === "inf" || text === "+inf" || text === "infinity" || text === "∞") return Infinity;
    return number(v, (x) => Number.isFinite(x) && x >= 0, "`temperature` must be a number >= 0 or inf.");
  }

  // The most draws a link may ask for (the server's default max_draws).
  const MAX_DRAWS = 1000000;

  // name in the state -> its slider, its number box, its URL key and its parse rule.
  const CONTROLS = {
    temperature: {
      slider: "temperature-slider",
      box: "temperature",
      key: "t",
      parse: temperatureOf,
      // The slider holds log10(T), -2..2; a slider position reads as T to 3
      // significant digits (0.35, not 0.34994...). 0 and inf sit at its ends.
      fromSlider: (v) => Number((10 ** Number(v)).toPrecision(3)),
      toSlider: (t) => (t === 0 ? -2 : t === Infinity ? 2 : Math.min(2, Math.max(-2, Math.log10(t)))),
    },
    topK: {
      slider: "top-k-slider",
      box: "top-k",
      key: "k",
      parse: (v) => number(v, (x) => Number.isInteger(x) && x >= 0, "`top-k` must be an integer >= 0 (0 = off)."),
    },
    topP: {
      slider: "top-p-slider",
      box: "top-p",
      key: "p",
      parse: (v) => number(v, (x) => Number.isFinite(x) && x > 0 && x <= 1, "`top-p` must be in (0, 1] (1 = off)."),
    },
    minP: {
      slider: "min-p-slider",
      box: "min-p",
      key: "minp",
      parse: (v) => number(v, (x) => Number.isFinite(x) && x >= 0 && x <= 1, "`min-p` must be in [0, 1] (0 = off)."),
    },
  };

  // A slider's value as the state holds it, and back (identity but for T).
  function fromSlider(c, v) {
    return c.fromSlider ? c.fromSlider(v) : c.parse(v);
  }

  function toSlider(c, x) {
    return String(c.toSlider ? c.toSlider(x) : x);
  }

  function initialState() {
    return {
      mode: "logits",
      logitsText: "",
      labelsText: "",
      prompt: "",
      temperature: 1,
      topK: 0,
      topP: 1,
      minP: 0,
      maxNewTokens: 40,
      seed: 0,
      order: "transformers",
      logScale: false,
      draws: 0,
      drawSeed: 0,
    };
  }

  // The setting as the JSON API names it (POST /api/draw and /api/sample).
  function apiSetting(state) {
    return { temperature: state.temperature, top_k: state.topK, top_p: state.topP, min_p: state.minP };
  }

  function show(v) {
    return v === Infinity ? "inf" : String(v);
  }

  function writeUrl(state) {
    const q = new URLSearchParams();
    q.set("mode", state.mode);
    if (state.mode === "logits") {
      q.set("logits", state.logitsText);
      if (state.labelsText) q.set("labels", state.labelsText);
    } else {
      q.set("prompt", state.prompt);
      q.set("n", String(state.maxNewTokens));
      q.set("seed", String(state.seed));
    }
    for (const [name, c] of Object.entries(CONTROLS)) q.set(c.key, show(state[name]));
    if (state.order !== "transformers") q.set("order", state.order);
    if (state.logScale) q.set("scale", "log");
    if (state.draws > 0) {
      q.set("draws", String(state.draws));
      q.set("dseed", String(state.drawSeed));
    }
    history.replaceState(null, "", `${location.pathname}?${q.toString()}`);
  }

  // Read the state from the URL into `state`; returns what it had to ignore.
  function readUrl(state) {
    const ignored = [];
    const q = new URLSearchParams(location.search);
    if (q.get("mode") === "model") state.mode = "model";
    // A link's logits without labels are numbered, not named by the default example.
    if (q.has("logits")) {
      state.logitsText = q.get("logits");
      state.labelsText = "";
    }
    if (q.has("labels")) state.labelsText = q.get("labels");
    if (q.has("prompt")) state.prompt = q.get("prompt");
    for (const [name, c] of Object.entries(CONTROLS)) {
      if (!q.has(c.key)) continue;
      try {
        state[name] = c.parse(q.get(c.key));
      } catch (err) {
        ignored.push(`Ignored the link's ${c.key}: ${err.message}`);
      }
    }
    const n = Number(q.get("n"));
    if (Number.isInteger(n) && n >= 1) state.maxNewTokens = n;
    const seed = Number(q.get("seed"));
    if (q.has("seed") && Number.isInteger(seed) && seed >= 0) state.seed = seed;
    if (q.has("order")) {
      if (q.get("order") === "llama.cpp" || q.get("order") === "transformers") state.order = q.get("order");
      else ignored.push(`Ignored the link's order: \`order\` must be transformers or llama.cpp.`);
    }
    state.logScale = q.get("scale") === "log";
    if (q.has("draws")) {
      const n = Number(q.get("draws"));
      const s = Number(q.get("dseed") || "0");
      if (Number.isInteger(n) && n >= 1 && n <= MAX_DRAWS && Number.isInteger(s) && s >= 0) {
        state.draws = n;
        state.drawSeed = s;
      } else {
        ignored.push(`Ignored the link's draws: \`draws\` must be an integer in 1..${MAX_DRAWS} and \`dseed\` >= 0.`);
      }
    }
    return ignored;
  }

  root.ThermoscopeState = {
    CONTROLS, MAX_DRAWS, initialState, apiSetting, readUrl, writeUrl, fromSlider, toSlider, show,
  };
})(self);
