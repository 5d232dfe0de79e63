// The tickvault HTTP API as the dashboard uses it: typed responses and one error type.
// Only the public REST surface of docs/service.md is used, so the dashboard works against any
// tickvault server (same origin) without special endpoints.

export interface Bar {
  ts: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  vwap?: number | null;
  trade_count?: number | null;
  provider?: string | null;
}

export interface BarsResponse {
  symbol: string;
  timeframe: string;
  adjust: string;
  count: number;
  bars: Bar[];
}

export interface Instrument {
  symbol: string;
  asset_class: string;
  exchange: string | null;
  currency: string | null;
  calendar: string | null;
  status: string;
  name: string | null;
}

export interface InstrumentPage {
  items: Instrument[];
  total: number;
}

export interface SeriesStats {
  symbol: string;
  timeframe: string;
  rows: number;
  first: string | null;
  last: string | null;
  holes: number;
  missing_spans: [string, string][];
  quality_score: number | null;
  quarantined: number;
  last_update: string | null;
}

export interface CoverageInterval {
  start: string;
  end: string;
  state: string;
  provider: string | null;
  updated: string | null;
}

export interface Coverage {
  symbol: string;
  timeframe: string;
  intervals: CoverageInterval[];
  missing: [string, string][] | null;
}

export interface QualityReport {
  symbol: string;
  timeframe: string;
  rows: number;
  score: number;
  counts: Record<string, number>;
  hard_rules: string[];
  hard_failures: number;
  soft_flags: number;
  created: string | null;
}

export interface QuarantineRow extends Bar {
  rule: string;
  reason: string;
  quarantined_at: string | null;
}

export interface Quarantine {
  count: number;
  rows: QuarantineRow[];
}

export interface ProviderHealth {
  name: string;
  calls: number;
  errors: number;
}

export interface CacheLevel {
  name: string;
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  hit_rate: number | null;
}

export interface CacheHealth {
  status: string;
  cache: {
    enabled: boolean;
    hit_rate: number | null;
    levels: Record<string, CacheLevel>;
    reads: Record<string, number>;
    redis: { url: string; connected: boolean; shared?: { hit_rate: number | null } } | null;
  };
}

export interface DbHealth {
  status: string;
  backend: { kind: string; location: string; size_bytes: number | null; connected: boolean; error: string | null };
}

/** An error answer of the API (`{"error": {status, code, message, ...}}`) or a network failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** `BTC/USDT` stays a path (the API routes `{symbol:path}`); each segment is escaped (`^GSPC`). */
export function symbolPath(symbol: string): string {
  return symbol.split("/").map(encodeURIComponent).join("/");
}

type Params = Record<string, string | number | undefined | null>;

export class Api {
  /** `apiKey` is asked for on every call, so a key typed in later applies at once. */
  constructor(private readonly apiKey: () => string | null) {}

  async get<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
    const text = await this.fetchText(path, params, "application/json", signal);
    try {
      return (text ? JSON.parse(text) : null) as T;
    } catch {
      throw new ApiError(0, "bad_response", `${path} did not answer JSON`);
    }
  }

  private async fetchText(path: string, params: Params, accept: string, signal?: AbortSignal): Promise<string> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== "") query.set(k, String(v));
    }
    const qs = query.toString();
    // Relative to the page, so a reverse proxy may mount the app under a prefix.
    const url = `.${path}${qs ? `?${qs}` : ""}`;
    const headers: Record<string, string> = { Accept: accept };
    const key = this.apiKey();
    if (key) headers["X-API-Key"] = key;
    let resp: Response;
    try {
      resp = await fetch(url, { headers, signal: signal ?? null });
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") throw err;
      throw new ApiError(0, "network", `cannot reach the server (${String(err)})`);
    }
    const text = await resp.text();
    if (!resp.ok) {
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
      const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)
        ?.error;
      throw new ApiError(resp.status, e?.code ?? "http_error", e?.message ?? `HTTP ${resp.status}`, e?.details ?? {});
    }
    return text;
  }

  instruments(q: string, signal?: AbortSignal): Promise<InstrumentPage> {
    return this.get("/v1/instruments", { q, limit: 20 }, signal);
  }

  status(signal?: AbortSignal): Promise<{ series: SeriesStats[] }> {
    return this.get("/v1/status", {}, signal);
  }

  latest(symbol: string, timeframe: string, n: number, adjust: string, signal?: AbortSignal): Promise<BarsResponse> {
    return this.get(`/v1/bars/${symbolPath(symbol)}/latest`, { timeframe, n, adjust }, signal);
  }

  bars(symbol: string, timeframe: string, start: string | null, end: string | null, adjust: string,
    signal?: AbortSignal): Promise<BarsResponse> {
    return this.get(`/v1/bars/${symbolPath(symbol)}`, { timeframe, start, end, adjust }, signal);
  }

  coverage(symbol: string, timeframe: string, start: string | null, end: string | null,
    signal?: AbortSignal): Promise<Coverage> {
    return this.get(`/v1/bars/${symbolPath(symbol)}/coverage`, { timeframe, start, end }, signal);
  }

  quality(symbol: string, timeframe: string, signal?: AbortSignal): Promise<QualityReport> {
    return this.get(`/v1/bars/${symbolPath(symbol)}/quality`, { timeframe }, signal);
  }

  quarantine(symbol: string, timeframe: string, signal?: AbortSignal): Promise<Quarantine> {
    return this.get(`/v1/bars/${symbolPath(symbol)}/quarantine`, { timeframe }, signal);
  }

  providers(): Promise<{ providers: ProviderHealth[] }> {
    return this.get("/health/providers");
  }

  cache(): Promise<CacheHealth> {
    return this.get("/health/cache");
  }

  db(): Promise<DbHealth> {
    return this.get("/health/db");
  }

  /** Prometheus text of `/metrics`. */
  metrics(): Promise<string> {
    return this.fetchText("/metrics", {}, "text/plain");
  }
}

/** Sum of the samples of `name` per value of `label` in Prometheus text (`{hit: 5, miss: 2}`). */
export function promCounts(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{([^}]*)\\}\\s+([0-9.eE+-]+)`, "gm");
  for (const m of text.matchAll(re)) {
    const labels = m[1] ?? "";
    const value = Number(m[2]);
    const lm = new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(labels);
    if (!lm || !Number.isFinite(value)) continue;
    const key = lm[1] ?? "";
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}
