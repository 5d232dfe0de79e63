// Indicators drawn on the chart, computed in the browser from the bars on screen.
//
// Names and conventions are those of `tickvault.transform.indicators` (docs/analytics.md), so
// `sma_20` on the page is `vault.indicators(..., ["sma_20"])` in Python: SMA/WMA exact windows,
// EMA seeded with the mean of the first n values, Bollinger with the population standard
// deviation, RSI and MACD with Wilder/SMA seeds. The end-to-end test checks the values against
// the Python implementation. Values before the warm-up are NaN (not drawn).

export type Kind = "sma" | "ema" | "wma" | "bb" | "rsi" | "macd";

export interface IndicatorSpec {
  /** Canonical name, parameters spelled out (`rsi` -> `rsi_14`). */
  name: string;
  kind: Kind;
  params: number[];
  /** Drawn over the prices (true) or in a pane of its own. */
  overlay: boolean;
}

/** Output lines of one indicator, each as long as the input, NaN where undefined. */
export type Outputs = Record<string, Float64Array>;

const DEFAULTS: Record<Kind, number[]> = {
  sma: [20],
  ema: [20],
  wma: [20],
  bb: [20, 2],
  rsi: [14],
  macd: [12, 26, 9],
};

export const KINDS = Object.keys(DEFAULTS) as Kind[];

/** Parse `sma_20`, `bb_20_2.5`, `rsi` ...; throws an Error naming the problem. */
export function parseIndicator(raw: string): IndicatorSpec {
  const text = raw.trim().toLowerCase();
  const [kindText = "", ...rest] = text.split("_");
  if (!(kindText in DEFAULTS)) {
    throw new Error(`unknown indicator '${raw.trim()}' (use ${KINDS.join(", ")}, e.g. sma_20, bb_20_2, rsi_14)`);
  }
  const kind = kindText as Kind;
  const defaults = DEFAULTS[kind];
  if (rest.length > defaults.length) throw new Error(`${kind} takes at most ${defaults.length} parameter(s)`);
  const params = defaults.map((d, i) => {
    const p = rest[i];
    if (p === undefined) return d;
    const v = Number(p);
    const isWidth = kind === "bb" && i === 1;
    if (!Number.isFinite(v) || v <= 0 || (!isWidth && !Number.isInteger(v)) || v > 5000) {
      throw new Error(`bad parameter '${p}' in '${raw.trim()}'`);
    }
    return v;
  });
  if (kind === "macd" && (params[0] ?? 0) >= (params[1] ?? 0)) throw new Error("macd: fast must be below slow");
  return { name: [kind, ...params.map(String)].join("_"), kind, params, overlay: kind !== "rsi" && kind !== "macd" };
}

/** Parse a comma- or space-separated list, dropping duplicates. */
export function parseIndicators(text: string): IndicatorSpec[] {
  const seen = new Set<string>();
  const out: IndicatorSpec[] = [];
  for (const part of text.split(/[\s,;]+/)) {
    if (!part) continue;
    const spec = parseIndicator(part);
    if (!seen.has(spec.name)) {
      seen.add(spec.name);
      out.push(spec);
    }
  }
  return out;
}

function nans(n: number): Float64Array {
  return new Float64Array(n).fill(Number.NaN);
}

/** Simple moving average; each window summed afresh (no running-sum drift, like the Python side). */
export function sma(x: ArrayLike<number>, n: number): Float64Array {
  const out = nans(x.length);
  for (let i = n - 1; i < x.length; i++) {
    let s = 0;
    for (let j = i - n + 1; j <= i; j++) s += x[j] as number;
    out[i] = s / n;
  }
  return out;
}

/** Weighted moving average, weights n..1 with the newest heaviest. */
export function wma(x: ArrayLike<number>, n: number): Float64Array {
  const out = nans(x.length);
  const denom = (n * (n + 1)) / 2;
  for (let i = n - 1; i < x.length; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += (n - j) * (x[i - j] as number);
    out[i] = s / denom;
  }
  return out;
}

/**
 * Exponential smoothing seeded with the mean of the first `n` finite values (leading NaNs are
 * skipped, so an EMA of a warming-up series starts where that series does).
 */
function smooth(x: ArrayLike<number>, n: number, alpha: number): Float64Array {
  const out = nans(x.length);
  let first = 0;
  while (first < x.length && !Number.isFinite(x[first] as number)) first++;
  const seedAt = first + n - 1;
  if (seedAt >= x.length) return out;
  let y = 0;
  for (let j = first; j <= seedAt; j++) y += x[j] as number;
  y /= n;
  out[seedAt] = y;
  for (let i = seedAt + 1; i < x.length; i++) {
    y = y * (1 - alpha) + alpha * (x[i] as number);
    out[i] = y;
  }
  return out;
}

export function ema(x: ArrayLike<number>, n: number): Float64Array {
  return smooth(x, n, 2 / (n + 1));
}

/** Bollinger Bands: SMA(n) plus/minus k population standard deviations. */
export function bbands(x: ArrayLike<number>, n: number, k: number): Outputs {
  const middle = sma(x, n);
  const upper = nans(x.length);
  const lower = nans(x.length);
  for (let i = n - 1; i < x.length; i++) {
    const m = middle[i] as number;
    let ss = 0;
    for (let j = i - n + 1; j <= i; j++) ss += ((x[j] as number) - m) ** 2;
    const sd = Math.sqrt(ss / n);
    upper[i] = m + k * sd;
    lower[i] = m - k * sd;
  }
  return { middle, upper, lower };
}

/** RSI with Wilder's smoothing; the first value is at bar n; 50 when nothing moved. */
export function rsi(x: ArrayLike<number>, n: number): Float64Array {
  const out = nans(x.length);
  if (x.length <= n) return out;
  let gain = 0;
  let loss = 0;
  for (let i = 1; i <= n; i++) {
    const d = (x[i] as number) - (x[i - 1] as number);
    if (d > 0) gain += d;
    else loss -= d;
  }
  gain /= n;
  loss /= n;
  const value = (): number => (gain + loss === 0 ? 50 : (100 * gain) / (gain + loss));
  out[n] = value();
  for (let i = n + 1; i < x.length; i++) {
    const d = (x[i] as number) - (x[i - 1] as number);
    gain = gain * (1 - 1 / n) + (d > 0 ? d : 0) / n;
    loss = loss * (1 - 1 / n) + (d < 0 ? -d : 0) / n;
    out[i] = value();
  }
  return out;
}

/** MACD: EMA(fast) - EMA(slow), its EMA(signal), and the difference. */
export function macd(x: ArrayLike<number>, fast: number, slow: number, signal: number): Outputs {
  const f = ema(x, fast);
  const s = ema(x, slow);
  const line = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) line[i] = (f[i] as number) - (s[i] as number);
  const sig = smooth(line, signal, 2 / (signal + 1));
  const hist = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) hist[i] = (line[i] as number) - (sig[i] as number);
  return { line, signal: sig, hist };
}

/** All output lines of `spec` over `closes`, keyed by output (`value` for single-line indicators). */
export function compute(spec: IndicatorSpec, closes: ArrayLike<number>): Outputs {
  const [a = 0, b = 0, c = 0] = spec.params;
  switch (spec.kind) {
    case "sma":
      return { value: sma(closes, a) };
    case "ema":
      return { value: ema(closes, a) };
    case "wma":
      return { value: wma(closes, a) };
    case "bb":
      return bbands(closes, a, b);
    case "rsi":
      return { value: rsi(closes, a) };
    case "macd":
      return macd(closes, a, b, c);
  }
}
