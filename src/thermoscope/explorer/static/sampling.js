/*
 * thermoscope's sampling arithmetic in the browser: temperature, then top-k,
 * top-p and min-p (transformers' order), exactly as
 * thermoscope.sampling.summarize_sampling computes them in Python. The
 * browser and Node tests compare the two to 1e-6 on random settings.
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

  return { scale, topK, topP, minP, softmax, entropy, summarize, parseLogits };
});
