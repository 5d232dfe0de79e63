// Time helpers. The API speaks UTC ISO 8601 with up to microseconds; the chart wants whole
// UTC seconds. Everything on the page is shown in UTC, like the store keeps it.

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Milliseconds since the epoch of an ISO string (a bare date is 00:00 UTC); NaN if unreadable. */
export function parseIsoMs(text: string): number {
  const m = ISO_RE.exec(text.trim());
  if (!m) return Number.NaN;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone = "Z"] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (frac) ms += Number(`0.${frac}`) * 1000;
  if (zone !== "Z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000;
  }
  return ms;
}

/** Whole UTC seconds (what lightweight-charts calls a `UTCTimestamp`). */
export function isoToSeconds(text: string): number {
  return Math.floor(parseIsoMs(text) / 1000);
}

/** `2024-03-01T14:30:00Z` for whole seconds since the epoch. */
export function secondsToIso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}

/** A short UTC label: the date for daily data, date and minute otherwise. */
export function label(ms: number, withTime = true): string {
  if (!Number.isFinite(ms)) return "–";
  const iso = new Date(ms).toISOString();
  return withTime ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
}

const UNIT_SECONDS: Record<string, number> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 7 * 86_400,
  mo: 30 * 86_400,
  y: 365 * 86_400,
};

/** Nominal length of a timeframe (`5m` = 300 s; a month counts 30 days). */
export function timeframeSeconds(tf: string): number {
  const m = /^(\d+)(mo|s|m|h|d|w|y)$/.exec(tf);
  if (!m) return 60;
  return Number(m[1]) * (UNIT_SECONDS[m[2] ?? "m"] ?? 60);
}
