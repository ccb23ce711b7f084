/*
 * The explorer page's state and its URL: the four sampling controls (each
 * with its one parse rule and message), the initial state, and the query
 * string that makes a view shareable (?mode=&logits=&labels=&t=&k=&p=&minp=
 * in logits mode; ?mode=model&prompt=&n=&seed=&t=... in model mode).
 */
(function (root) {
  "use strict";

  function number(v, ok, message) {
    const x = Number(v);
    if (v === "" || !ok(x)) throw new Error(message);
    return x;
  }

  // name in the state -> its slider, its number box, its URL key and its parse rule.
  const CONTROLS = {
    temperature: {
      slider: "temperature-slider",
      box: "temperature",
      key: "t",
      parse: (v) => number(v, (x) => Number.isFinite(x) && x >= 0, "`temperature` must be a number >= 0."),
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
    };
  }

  // The setting as the JSON API names it (POST /api/draw and /api/sample).
  function apiSetting(state) {
    return { temperature: state.temperature, top_k: state.topK, top_p: state.topP, min_p: state.minP };
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
    for (const [name, c] of Object.entries(CONTROLS)) q.set(c.key, String(state[name]));
    history.replaceState(null, "", `${location.pathname}?${q.toString()}`);
  }

  // Read the state from the URL into `state`; returns what it had to ignore.
  function readUrl(state) {
    const ignored = [];
    const q = new URLSearchParams(location.search);
    if (q.get("mode") === "model") state.mode = "model";
    if (q.has("logits")) state.logitsText = q.get("logits");
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
    return ignored;
  }

  root.ThermoscopeState = { CONTROLS, initialState, apiSetting, readUrl, writeUrl };
})(self);
