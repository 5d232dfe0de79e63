// Side panels: the series' facts, its quality report and quarantine, and the service's health
// (store, cache hit rate, providers). Each renders from API answers only.

import { ApiError, promCounts, type Api, type CacheHealth, type DbHealth, type ProviderHealth, type QualityReport,
  type Quarantine, type SeriesStats } from "./api";
import { bytes, facts, h, pct } from "./dom";
import { label, parseIsoMs } from "./time";

function when(iso: string | null | undefined): string {
  return iso ? `${label(parseIsoMs(iso))} UTC` : "–";
}

function scoreClass(score: number | null | undefined): string {
  if (score === null || score === undefined) return "";
  return score >= 0.99 ? "good" : score >= 0.95 ? "warn" : "bad";
}

export function renderSeries(host: HTMLElement, stats: SeriesStats | null, shownTf: string, note: string): void {
  host.replaceChildren();
  if (!stats) {
    host.append(h("p", { class: "muted" }, note || "Nothing stored for this series."));
    return;
  }
  const derived = stats.timeframe !== shownTf;
  host.append(facts([
    ["series", `${stats.symbol} ${stats.timeframe}${derived ? ` (chart: ${shownTf}, resampled from it)` : ""}`],
    ["rows", stats.rows.toLocaleString("en-US")],
    ["first bar", when(stats.first)],
    ["last bar", when(stats.last)],
    ["holes", h("span", { class: stats.holes ? "bad" : "good" }, stats.holes.toLocaleString("en-US"))],
    ["quarantined", h("span", { class: stats.quarantined ? "warn" : "good" }, stats.quarantined.toLocaleString("en-US"))],
    ["quality score", h("span", { class: scoreClass(stats.quality_score) }, pct(stats.quality_score, 2))],
    ["last write", when(stats.last_update)],
  ]));
  if (note) host.append(h("p", { class: "muted" }, note));
}

export function renderQuality(host: HTMLElement, report: QualityReport | null, quarantine: Quarantine | null,
  onPick: (iso: string) => void): void {
  host.replaceChildren();
  if (!report) {
    host.append(h("p", { class: "muted" }, "No quality report for this series yet."));
  } else {
    // The API keeps the report of the series' last write or validation, not a running total:
    // say so, or a clean one-bar write would read as "the whole series is clean".
    host.append(h("p", { class: "muted" }, `Report of the last write or validation (${when(report.created)}), `
      + `${report.rows.toLocaleString("en-US")} ${report.rows === 1 ? "row" : "rows"} checked.`));
    host.append(facts([
      ["score", h("span", { class: scoreClass(report.score) }, pct(report.score, 2))],
      ["hard failures", h("span", { class: report.hard_failures ? "bad" : "good" }, report.hard_failures)],
      ["soft flags", h("span", { class: report.soft_flags ? "warn" : "good" }, report.soft_flags)],
    ]));
    const flagged = Object.entries(report.counts).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    if (flagged.length) {
      const hard = new Set(report.hard_rules);
      host.append(h("table", { class: "rules" },
        h("tr", {}, h("th", {}, "rule"), h("th", {}, "kind"), h("th", {}, "rows")),
        ...flagged.map(([rule, n]) => h("tr", {}, h("td", {}, rule),
          h("td", { class: hard.has(rule) ? "bad" : "warn" }, hard.has(rule) ? "hard (quarantined)" : "soft (flagged)"),
          h("td", { class: "num" }, n.toLocaleString("en-US"))))));
    } else {
      host.append(h("p", { class: "good" }, "Every rule passed."));
    }
  }
  if (quarantine && quarantine.rows.length) {
    const shown = quarantine.rows.slice(0, 50);
    const list = h("ol", { class: "quarantine" });
    for (const row of shown) {
      const item = h("li", { title: row.reason }, h("code", {}, when(row.ts)), " ", h("b", {}, row.rule), " — ",
        row.reason);
      item.addEventListener("click", () => onPick(row.ts));
      list.append(item);
    }
    host.append(h("h3", {}, `Quarantined rows (${quarantine.count.toLocaleString("en-US")})`), list);
    if (quarantine.rows.length > shown.length) {
      host.append(h("p", { class: "muted" }, `first ${shown.length} shown; the CLI lists all: `,
        h("code", {}, "tickvault quarantine")));
    }
  }
}

async function settle<T>(p: Promise<T>): Promise<{ ok: T } | { err: ApiError | Error }> {
  try {
    return { ok: await p };
  } catch (e) {
    return { err: e instanceof Error ? e : new Error(String(e)) };
  }
}

export interface OpsSnapshot {
  cacheHitRate: number | null;
  responseCacheHitRate: number | null;
  providers: ProviderHealth[];
  store: string | null;
}

/** Fill the operations panel; returns what it showed (for the page hook). */
export async function renderOps(host: HTMLElement, api: Api, live: string): Promise<OpsSnapshot> {
  const [db, cache, prov, metrics] = await Promise.all([settle(api.db()), settle(api.cache()), settle(api.providers()),
    settle(api.metrics())]);
  host.replaceChildren();
  const out: OpsSnapshot = { cacheHitRate: null, responseCacheHitRate: null, providers: [], store: null };
  // A degraded part answers 503 with its report in error.details: show the report, flagged.
  const body = <T>(r: { ok: T } | { err: ApiError | Error }): { value: T | null; problem: string | null } => {
    if ("ok" in r) return { value: r.ok, problem: null };
    if (r.err instanceof ApiError && r.err.status === 503) return { value: r.err.details as T, problem: r.err.message };
    return { value: null, problem: r.err.message };
  };
  const d = body<DbHealth>(db);
  const backend = d.value?.backend;
  out.store = backend?.kind ?? null;
  host.append(h("h3", {}, "Store"), facts([
    ["backend", backend ? `${backend.kind}` : "–"],
    ["location", backend?.location ?? "–"],
    ["size", bytes(backend?.size_bytes)],
    ["status", h("span", { class: d.problem ? "bad" : "good" }, d.problem ?? "connected")],
  ]));
  const c = body<CacheHealth>(cache);
  const cc = c.value?.cache;
  out.cacheHitRate = cc?.hit_rate ?? null;
  const rows: [string, string | Node][] = [
    ["hit rate", h("span", { class: "big", id: "cache-hit-rate" }, pct(cc?.hit_rate))],
    ["reads", cc ? `${cc.reads.hits ?? 0} hits, ${cc.reads.misses ?? 0} misses` : "–"],
  ];
  for (const level of Object.values(cc?.levels ?? {})) {
    rows.push([`${level.name} level`, `${pct(level.hit_rate)} of ${(level.hits + level.misses).toLocaleString("en-US")}`
      + ` lookups, ${level.entries} entries, ${bytes(level.bytes)}`]);
  }
  if (cc?.redis) {
    rows.push(["redis", h("span", { class: cc.redis.connected ? "good" : "bad" },
      cc.redis.connected ? `connected, shared hit rate ${pct(cc.redis.shared?.hit_rate)}` : "disconnected")]);
  }
  if ("ok" in metrics) {
    // The service's own cache of serialised latest-N answers (only in the Prometheus metrics).
    const r = promCounts(metrics.ok, "tickvault_response_cache_total", "result");
    const hits = r.hit ?? 0;
    const total = hits + (r.miss ?? 0);
    out.responseCacheHitRate = total ? hits / total : null;
    rows.push(["API latest-N cache", `${pct(out.responseCacheHitRate)} of ${total.toLocaleString("en-US")} requests`]);
  }
  if (c.problem) rows.push(["status", h("span", { class: "bad" }, c.problem)]);
  host.append(h("h3", {}, "Cache"), facts(rows));
  const p = body<{ providers: ProviderHealth[] }>(prov);
  out.providers = p.value?.providers ?? [];
  host.append(h("h3", {}, "Providers"));
  if (p.problem) {
    host.append(h("p", { class: "bad" }, p.problem));
  } else if (out.providers.length === 0) {
    host.append(h("p", { class: "muted" }, "No provider calls by this server yet."));
  } else {
    host.append(h("table", { class: "rules" },
      h("tr", {}, h("th", {}, "provider"), h("th", {}, "calls"), h("th", {}, "errors"), h("th", {}, "error rate")),
      ...out.providers.map((x) => h("tr", {}, h("td", {}, x.name), h("td", { class: "num" }, x.calls),
        h("td", { class: x.errors ? "num bad" : "num" }, x.errors),
        h("td", { class: "num" }, x.calls ? pct(x.errors / x.calls) : "–")))));
  }
  host.append(h("h3", {}, "Live stream"), h("p", { id: "ops-live" }, live));
  return out;
}
