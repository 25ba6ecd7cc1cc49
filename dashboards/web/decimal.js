// tickwire ticker board: exact decimal arithmetic on the server's price
// and size strings ("64000.12"), with BigInt, never through floats.
// Exposed as globalThis.TickwireDecimal for board.js (no modules, no build).
"use strict";

(() => {
  const DECIMAL = /^-?\d+(?:\.\d+)?$/;

  /** "-12.340" -> {n: -12340n, scale: 3}; null for anything else. */
  function dec(s) {
    if (typeof s !== "string" || !DECIMAL.test(s)) return null;
    const neg = s.charCodeAt(0) === 45;
    const t = neg ? s.slice(1) : s;
    const dot = t.indexOf(".");
    const scale = dot < 0 ? 0 : t.length - dot - 1;
    const n = BigInt(dot < 0 ? t : t.slice(0, dot) + t.slice(dot + 1));
    return { n: neg ? -n : n, scale };
  }

  /** Both as integers of the larger scale. */
  function aligned(a, b) {
    const s = Math.max(a.scale, b.scale);
    return [a.n * 10n ** BigInt(s - a.scale), b.n * 10n ** BigInt(s - b.scale), s];
  }

  /** An integer of `scale` decimals as text: text(-5n, 2) is "-0.05". */
  function text(n, scale) {
    const neg = n < 0n;
    let s = (neg ? -n : n).toString();
    if (scale > 0) {
      s = s.padStart(scale + 1, "0");
      s = `${s.slice(0, -scale)}.${s.slice(-scale)}`;
    }
    return neg ? `-${s}` : s;
  }

  /** Sign of a - b; 0 when either is not a decimal. */
  function cmp(a, b) {
    const x = dec(a);
    const y = dec(b);
    if (!x || !y) return 0;
    const [p, q] = aligned(x, y);
    return p < q ? -1 : p > q ? 1 : 0;
  }

  /** a + b as text at the larger scale; null when either is not a decimal. */
  function add(a, b) {
    const x = dec(a);
    const y = dec(b);
    if (!x || !y) return null;
    const [p, q, s] = aligned(x, y);
    return text(p + q, s);
  }

  /** a - b as text at the larger scale; null when either is not a decimal. */
  function sub(a, b) {
    const x = dec(a);
    const y = dec(b);
    if (!x || !y) return null;
    const [p, q, s] = aligned(x, y);
    return text(p - q, s);
  }

  /** (last - open) / open in hundredths of a percent, rounded half away
   * from zero; null when it cannot be said. */
  function changeBp(last, open) {
    const x = dec(last);
    const y = dec(open);
    if (!x || !y) return null;
    const [l, o] = aligned(x, y);
    if (o === 0n) return null;
    const r = (l - o) * 10000n;
    let q = r / o;
    const rem = r % o;
    const abs = (v) => (v < 0n ? -v : v);
    if (2n * abs(rem) >= abs(o)) q += (r < 0n) !== (o < 0n) ? -1n : 1n;
    return q;
  }

  globalThis.TickwireDecimal = Object.freeze({ dec, cmp, add, sub, changeBp, text });
})();
