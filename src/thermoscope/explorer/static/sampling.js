/*
 * thermoscope's sampling arithmetic in the browser: temperature, then top-k,
 * top-p and min-p (transformers' order), exactly as
 * thermoscope.sampling.summarize_sampling computes them in Python. The
 * browser and Node tests compare the two to 1e-6 on random settings.
 *
 * chain() runs the same stages one by one in transformers' or llama.cpp's
 * order, as Sampler.trace reports them.
 *
 * Tie policy (as in Python): a cut is a threshold on the value, so every
 * token tied with the last one kept is kept too.
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.ThermoscopeMath = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  function maxOf(z) {
    let m = -Infinity;
    for (const v of z) if (v > m) m = v;
    return m;
  }

  function descending(z) {
    return Float64Array.from(z).sort().reverse();
  }

  // Divide by T; T = 0 is the greedy limit (every maximal token kept, with
  // logit 0), T = Infinity makes every unmasked logit equal.
  function scale(z, t) {
    if (t === 0) {
      const m = maxOf(z);
      return z.map((v) => (v === m ? 0 : -Infinity));
    }
    if (t === Infinity) return z.map((v) => (v === -Infinity ? -Infinity : 0));
    const m = maxOf(z);
    // A tiny T overflows z / T: shift by the maximum first (the same softmax).
    if (!Number.isFinite(m / t)) return z.map((v) => (v - m) / t);
    return z.map((v) => v / t);
  }

  function applyThreshold(z, thr) {
    return z.map((v) => (v >= thr ? v : -Infinity));
  }

  function topK(z, k) {
    const desc = descending(z);
    const kth = desc[Math.min(Math.max(k, 1), desc.length) - 1];
    return applyThreshold(z, kth);
  }

  // numpy's pairwise summation (np.sum of float64), in the same order: the
  // top-p total must be the very number Python compares with, or a p exactly
  // on a cumulative-mass boundary keeps one token more on one side.
  function pairwiseSum(a, lo, n) {
    if (n < 8) {
      let s = 0;
      for (let i = lo; i < lo + n; i++) s += a[i];
      return s;
    }
    if (n <= 128) {
      const r = a.slice(lo, lo + 8);
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[lo + i + j];
      let s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; i < n; i++) s += a[lo + i];
      return s;
    }
    let half = Math.floor(n / 2);
    half -= half % 8;
    return pairwiseSum(a, lo, half) + pairwiseSum(a, lo + half, n - half);
  }

  // Keep a token when the mass of the strictly more likely tokens is below p.
  function topP(z, p) {
    if (p >= 1) return z.slice();
    const m = maxOf(z);
    const weights = Float64Array.from(z, (v) => Math.exp(v - m));
    const total = pairwiseSum(weights, 0, weights.length);
    const desc = descending(z);
    const target = p * total;
    let through = 0;
    let nKeep = 1;
    for (let i = 0; i < desc.length - 1; i++) {
      through += Math.exp(desc[i] - m);
      if (through < target) nKeep += 1;
    }
    return applyThreshold(z, Math.min(desc[nKeep - 1], m));
  }

  function minP(z, p) {
    const m = maxOf(z);
    // log(0) = -Infinity: min-p 0 keeps every token.
    return applyThreshold(z, Math.min(m + Math.log(p), m));
  }

  function softmax(z) {
    const m = maxOf(z);
    const w = z.map((v) => Math.exp(v - m));
    let s = 0;
    for (const v of w) s += v;
    return w.map((v) => v / s);
  }

  function entropy(p) {
    let h = 0;
    for (const v of p) if (v > 0) h -= v * Math.log(v);
    return h;
  }

  /**
   * Temper, truncate and renormalise one logit vector.
   * @param {number[]} logits  finite numbers or -Infinity (masked)
   * @param {{temperature:number, topK:number, topP:number, minP:number}} s
   *   topK 0, topP 1 and minP 0 switch a step off.
   */
  function summarize(logits, s) {
    const z = Array.from(logits, Number);
    let w = s.temperature === 1 ? z.slice() : scale(z, s.temperature);
    const tempered = softmax(w);
    if (s.topK !== 0) w = topK(w, s.topK);
    if (s.topP !== 1) w = topP(w, s.topP);
    if (s.minP !== 0) w = minP(w, s.minP);
    const probabilities = softmax(w);
    const kept = w.map((v) => v !== -Infinity);
    let nucleusMass = 0;
    let keptCount = 0;
    for (let i = 0; i < kept.length; i++) {
      if (kept[i]) {
        nucleusMass += tempered[i];
        keptCount += 1;
      }
    }
    return {
      tempered,
      probabilities,
      kept,
      entropy: entropy(probabilities),
      nucleusMass,
      keptCount,
      maxProbability: maxOf(probabilities),
    };
  }

  // The stages of a chain, in each ecosystem's order (thermoscope.sampling's
  // TRANSFORMERS_ORDER and LLAMA_CPP_ORDER restricted to the four sliders).
  const ORDERS = {
    transformers: ["temperature", "top_k", "top_p", "min_p"],
    "llama.cpp": ["top_k", "top_p", "min_p", "temperature"],
  };

  // A stage that leaves every distribution unchanged is not in the chain
  // (as Sampler.from_options leaves it out).
  function stageIsOn(name, s) {
    if (name === "temperature") return s.temperature !== 1;
    if (name === "top_k") return s.topK !== 0;
    if (name === "top_p") return s.topP < 1;
    return s.minP !== 0;
  }

  function applyStage(name, w, s) {
    if (name === "temperature") return scale(w, s.temperature);
    if (name === "top_k") return topK(w, s.topK);
    if (name === "top_p") return topP(w, s.topP);
    return minP(w, s.minP);
  }

  function sumAt(p, keep) {
    let m = 0;
    for (let i = 0; i < p.length; i++) if (keep[i]) m += p[i];
    return m;
  }

  /**
   * Run the four-slider chain stage by stage in an order, as Sampler.trace does.
   * @param {number[]} logits
   * @param {{temperature:number, topK:number, topP:number, minP:number}} s
   * @param {"transformers"|"llama.cpp"} order
   * @returns {{stages: object[], probabilities: number[], kept: boolean[]}}
   *   Each stage: name, keptIds, removedIds, mass and removedMass (under the
   *   input's softmax, as Sampler.trace reports them) and the entropy of the
   *   renormalised distribution after the stage.
   */
  function chain(logits, s, order) {
    const names = ORDERS[order];
    if (!names) throw new Error(`\`order\` must be "transformers" or "llama.cpp", got ${order}.`);
    let w = Array.from(logits, Number);
    const input = softmax(w);
    const describe = (name, before, after) => {
      const keep = after.map((v) => v !== -Infinity);
      const removedIds = [];
      const keptIds = [];
      for (let i = 0; i < after.length; i++) {
        if (keep[i]) keptIds.push(i);
        else if (before[i] !== -Infinity) removedIds.push(i);
      }
      const gone = after.map((v, i) => v === -Infinity && before[i] !== -Infinity);
      return {
        name,
        keptIds,
        removedIds,
        mass: sumAt(input, keep),
        removedMass: sumAt(input, gone),
        entropy: entropy(softmax(after)),
      };
    };
    const stages = [describe("input", w, w)];
    for (const name of names) {
      if (!stageIsOn(name, s)) continue;
      const next = applyStage(name, w, s);
      stages.push(describe(name, w, next));
      w = next;
    }
    return { stages, probabilities: softmax(w), kept: w.map((v) => v !== -Infinity) };
  }

  /**
   * summarize() in either order: transformers' (temperature first) or
   * llama.cpp's (temperature last, so truncation sees the untempered logits).
   * keptMass is the kept tokens' mass under softmax(z / T) before truncation.
   */
  function summarizeIn(logits, s, order) {
    if (order === "transformers") {
      const t = summarize(logits, s);
      return { ...t, keptMass: t.nucleusMass };
    }
    const z = Array.from(logits, Number);
    const tempered = softmax(s.temperature === 1 ? z.slice() : scale(z, s.temperature));
    const c = chain(z, s, order);
    let keptCount = 0;
    for (const k of c.kept) if (k) keptCount += 1;
    const keptMass = sumAt(tempered, c.kept);
    return {
      tempered,
      probabilities: c.probabilities,
      kept: c.kept,
      entropy: entropy(c.probabilities),
      nucleusMass: keptMass,
      keptMass,
      keptCount,
      maxProbability: maxOf(c.probabilities),
    };
  }

  /**
   * Entropy (after the chain, and of softmax(z / T) before truncation) and the
   * largest sampling probability at each temperature of `temperatures`.
   */
  function curves(logits, s, order, temperatures) {
    const out = { temperature: [], entropy: [], entropyBefore: [], maxProbability: [] };
    for (const t of temperatures) {
      const r = summarizeIn(logits, { ...s, temperature: t }, order);
      out.temperature.push(t);
      out.entropy.push(r.entropy);
      out.entropyBefore.push(entropy(r.tempered));
      out.maxProbability.push(r.maxProbability);
    }
    return out;
  }

  /**
   * Seeded draws from a distribution, for a page with no server (the static
   * export): mulberry32 uniforms and the inverse CDF. Not numpy's stream, so
   * the counts differ from the Sampler's for the same seed; their law is the same.
   */
  function drawCounts(probabilities, n, seed) {
    let a = seed >>> 0;
    const uniform = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const cdf = [];
    let c = 0;
    for (const p of probabilities) {
      c += p;
      cdf.push(c);
    }
    const last = probabilities.reduce((j, p, i) => (p > 0 ? i : j), 0);
    const counts = new Array(probabilities.length).fill(0);
    for (let k = 0; k < n; k++) {
      const u = uniform() * c;
      let lo = 0;
      let hi = cdf.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      // A token of probability 0 is never drawn, even at a rounding edge.
      while (probabilities[lo] === 0 && lo < last) lo += 1;
      counts[lo] += 1;
    }
    return counts;
  }

  /**
   * Parse "2, 1, 0.5" or "2 1 -inf" into numbers; throws Error naming `logits`.
   */
  function parseLogits(text, maxCount) {
    const parts = text.split(/[\s,;]+/).filter((x) => x.length > 0);
    if (parts.length === 0) throw new Error("`logits` must hold at least one number.");
    if (parts.length > maxCount) {
      throw new Error(`\`logits\` must hold at most ${maxCount} numbers, got ${parts.length}.`);
    }
    const z = parts.map((x) => {
      const low = x.toLowerCase();
      if (low === "-inf" || low === "-infinity") return -Infinity;
      const v = Number(x);
      if (!Number.isFinite(v)) {
        throw new Error(`\`logits\` must be numbers (or -inf for a masked token), got '${x}'.`);
      }
      return v;
    });
    if (z.every((v) => v === -Infinity)) {
      throw new Error("`logits` must have at least one value that is not -inf.");
    }
    return z;
  }

  return {
    ORDERS, scale, topK, topP, minP, softmax, entropy, summarize, summarizeIn, chain, curves,
    drawCounts, parseLogits,
  };
});
