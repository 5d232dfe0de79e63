// The tickvault dashboard: search a symbol, chart its bars with volume and indicators over any
// timeframe and range, show its coverage, quality and quarantine, the service's health, and
// follow new bars live. See docs/dashboard.md.
//
// What is on screen is one `View` (symbol, timeframe, range, adjustment, indicators), mirrored
// in the URL hash so a view can be bookmarked or shared. Every load carries a generation
// number: answers of an older load that arrive late are dropped.

import "./style.css";

import { Api, ApiError, type Bar, type Coverage, type QualityReport, type Quarantine, type SeriesStats } from "./api";
import { ChartView, type ChartBar } from "./chart";
import { byId, h } from "./dom";
import { installHook, type Hook } from "./hook";
import { parseIndicators } from "./indicators";
import { LiveFeed, type LiveState, type Target } from "./live";
import { renderOps, renderQuality, renderSeries } from "./panels";
import { Search } from "./search";
import { isoToSeconds, parseIsoMs, secondsToIso, timeframeSeconds } from "./time";
import { Timeline, spansFromPairs, type TimelineData } from "./timeline";

const TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "1mo"];
const DEFAULT_INDICATORS = "sma_20, sma_50";
const KEY_STORAGE = "tickvault.apiKey";
const OPS_PERIOD_MS = 10_000;

interface View {
  symbol: string | null;
  timeframe: string;
  range: string; // "500" | "2000" | "10000" | "all" | "custom"
  start: string;
  end: string;
  adjust: string;
  indicators: string;
}

// -- elements ------------------------------------------------------------------------------------

const el = {
  symbol: byId<HTMLInputElement>("symbol"),
  form: byId<HTMLFormElement>("search-form"),
  suggest: byId<HTMLUListElement>("suggest"),
  timeframe: byId<HTMLSelectElement>("timeframe"),
  range: byId<HTMLSelectElement>("range"),
  custom: byId("custom-range"),
  start: byId<HTMLInputElement>("start"),
  end: byId<HTMLInputElement>("end"),
  applyRange: byId<HTMLButtonElement>("apply-range"),
  adjust: byId<HTMLSelectElement>("adjust"),
  indicators: byId<HTMLInputElement>("indicators"),
  live: byId("live"),
  apiKey: byId<HTMLInputElement>("api-key"),
  keyForm: byId<HTMLFormElement>("key-form"),
  chartMessage: byId("chart-message"),
  timelineTitle: byId("timeline-title"),
  series: byId("series-panel"),
  quality: byId("quality-panel"),
  ops: byId("ops-panel"),
  catalog: byId("catalog-panel"),
  status: byId("status"),
};

// -- state ---------------------------------------------------------------------------------------

const apiKey = (): string | null => sessionStorage.getItem(KEY_STORAGE);
const api = new Api(apiKey);
const chart = new ChartView(byId("chart"), byId("legend"));
const timeline = new Timeline(byId("timeline"), byId("timeline-legend"), (ms) => {
  if (!chart.reveal(Math.floor(ms / 1000))) say("That time is outside the loaded bars; widen the range to see it.");
});

let view: View = readHash();
let generation = 0;
let controller: AbortController | null = null;
let catalog: SeriesStats[] = [];
let sourceTf: string | null = null; // the stored timeframe behind the chart (differs when resampled)
let detailsTimer: number | undefined;
let derivedRefresh: Promise<void> = Promise.resolve();

const hook: Hook = installHook({
  chart,
  timeline,
  load: (symbol, timeframe) => {
    if (timeframe) view.timeframe = timeframe;
    return loadSymbol(symbol);
  },
});

const live = new LiveFeed(apiKey, {
  onBars: (target, bars) => onLiveBars(target, bars),
  onState: (state, detail) => showLive(state, detail),
  onSubscribed: (subscriptions) => {
    hook.subscriptions = subscriptions;
    showLiveSummary();
  },
});

// -- helpers -------------------------------------------------------------------------------------

function say(text: string, kind: "info" | "error" = "info"): void {
  el.status.textContent = text;
  el.status.className = `status ${kind}`;
  if (kind === "error") hook.error = text;
}

function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return `${err.message} — this server needs an API key for reads (set it under Key).`;
    return err.status ? `${err.message} (HTTP ${err.status})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === "AbortError";
}

function toChartBars(bars: Bar[]): ChartBar[] {
  const out: ChartBar[] = [];
  for (const b of bars) {
    const time = isoToSeconds(b.ts);
    if (!Number.isFinite(time)) continue;
    out.push({ time, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume ?? 0 });
  }
  // The API answers sorted and unique; the chart library insists on it, so make sure.
  out.sort((a, b) => a.time - b.time);
  return out.filter((b, i) => i === out.length - 1 || (out[i + 1] as ChartBar).time !== b.time);
}

function readHash(): View {
  const p = new URLSearchParams(window.location.hash.slice(1));
  return {
    symbol: p.get("symbol")?.toUpperCase() || null,
    timeframe: p.get("tf") || "1d",
    range: p.get("range") || "500",
    start: p.get("start") || "",
    end: p.get("end") || "",
    adjust: p.get("adjust") || "splits",
    indicators: p.get("ind") ?? DEFAULT_INDICATORS,
  };
}

function writeHash(): void {
  const p = new URLSearchParams();
  if (view.symbol) p.set("symbol", view.symbol);
  p.set("tf", view.timeframe);
  p.set("range", view.range);
  if (view.range === "custom") {
    if (view.start) p.set("start", view.start);
    if (view.end) p.set("end", view.end);
  }
  p.set("adjust", view.adjust);
  p.set("ind", view.indicators);
  history.replaceState(null, "", `#${p.toString()}`);
}

function syncControls(): void {
  el.symbol.value = view.symbol ?? "";
  el.range.value = view.range;
  el.custom.hidden = view.range !== "custom";
  el.start.value = view.start;
  el.end.value = view.end;
  el.adjust.value = view.adjust;
  el.indicators.value = view.indicators;
  fillTimeframes();
}

function storedFor(symbol: string | null): SeriesStats[] {
  return catalog.filter((s) => s.symbol === symbol && s.rows > 0)
    .sort((a, b) => timeframeSeconds(a.timeframe) - timeframeSeconds(b.timeframe));
}

function fillTimeframes(): void {
  const stored = new Set(storedFor(view.symbol).map((s) => s.timeframe));
  const all = [...new Set([...TIMEFRAMES, ...stored, view.timeframe])]
    .sort((a, b) => timeframeSeconds(a) - timeframeSeconds(b));
  el.timeframe.replaceChildren(...all.map((tf) => {
    const o = h("option", { value: tf }, stored.has(tf) ? `${tf} ●` : tf);
    o.title = stored.has(tf) ? "stored" : "resampled from a finer stored timeframe";
    return o;
  }));
  el.timeframe.value = view.timeframe;
}

/** The stored timeframe to read for `tf`: itself, else the coarsest stored one finer than it. */
function sourceFor(symbol: string, tf: string): string | null {
  const stored = storedFor(symbol);
  if (stored.some((s) => s.timeframe === tf)) return tf;
  const finer = stored.filter((s) => timeframeSeconds(s.timeframe) < timeframeSeconds(tf));
  return finer.length ? (finer[finer.length - 1] as SeriesStats).timeframe : null;
}

// -- loading -------------------------------------------------------------------------------------

async function refreshCatalog(signal?: AbortSignal): Promise<void> {
  catalog = (await api.status(signal)).series;
  renderCatalog();
}

function renderCatalog(): void {
  el.catalog.replaceChildren();
  if (catalog.length === 0) {
    el.catalog.append(h("p", { class: "muted" }, "The vault holds no bars yet."));
    return;
  }
  const list = h("ul", { class: "catalog" });
  for (const s of catalog.slice(0, 200)) {
    const item = h("li", { "data-symbol": s.symbol, "data-timeframe": s.timeframe },
      h("b", {}, s.symbol), " ", s.timeframe, " ",
      h("span", { class: "muted" }, `${s.rows.toLocaleString("en-US")} bars`));
    item.addEventListener("click", () => {
      view.timeframe = s.timeframe;
      void loadSymbol(s.symbol);
    });
    list.append(item);
  }
  el.catalog.append(list);
  if (catalog.length > 200) el.catalog.append(h("p", { class: "muted" }, `first 200 of ${catalog.length}`));
}

async function fetchBars(symbol: string, tf: string, source: string, stats: SeriesStats | undefined,
  signal: AbortSignal): Promise<Bar[]> {
  const adjust = view.adjust;
  if (view.range === "custom") {
    if (!view.start) throw new Error("give a start (a date such as 2024-01-01, or an ISO instant)");
    return (await api.bars(symbol, tf, view.start, view.end || null, adjust, signal)).bars;
  }
  const derived = source !== tf;
  if (!derived) {
    if (view.range === "all") return (await api.bars(symbol, tf, null, null, adjust, signal)).bars;
    return (await api.latest(symbol, tf, Number(view.range), adjust, signal)).bars;
  }
  // Resampled: the API derives bars over an explicit range only, so ask for a window that holds
  // the wanted number of bars (sessions leave gaps, hence the margin) and keep the newest ones.
  if (!stats?.first || !stats.last) return [];
  const firstMs = parseIsoMs(stats.first);
  const endMs = parseIsoMs(stats.last) + timeframeSeconds(source) * 1000;
  let startMs = firstMs;
  if (view.range !== "all") {
    startMs = Math.max(firstMs, endMs - Number(view.range) * timeframeSeconds(tf) * 1000 * 8);
  }
  const bars = (await api.bars(symbol, tf, secondsToIso(Math.floor(startMs / 1000)),
    secondsToIso(Math.ceil(endMs / 1000)), adjust, signal)).bars;
  return view.range === "all" ? bars : bars.slice(-Number(view.range));
}

async function loadSymbol(raw: string): Promise<void> {
  const symbol = raw.trim().toUpperCase();
  if (!symbol) return;
  const gen = ++generation;
  controller?.abort();
  controller = new AbortController();
  const signal = controller.signal;
  view.symbol = symbol;
  hook.loading = true;
  hook.symbol = symbol;
  hook.error = null;
  say(`Loading ${symbol}…`);
  try {
    await refreshCatalog(signal);
    if (gen !== generation) return;
    const stored = storedFor(symbol);
    let source = sourceFor(symbol, view.timeframe);
    if (!source && stored.length) {
      // Nothing fine enough to derive this timeframe from: show the finest stored one.
      view.timeframe = (stored[0] as SeriesStats).timeframe;
      source = view.timeframe;
    }
    syncControls();
    writeHash();
    sourceTf = source;
    hook.timeframe = view.timeframe;
    hook.sourceTimeframe = source;
    hook.adjust = view.adjust;
    const stats = stored.find((s) => s.timeframe === source);
    const bars = source ? toChartBars(await fetchBars(symbol, view.timeframe, source, stats, signal)) : [];
    if (gen !== generation) return;
    const title = `${symbol} · ${view.timeframe}${source && source !== view.timeframe ? ` (from ${source})` : ""}`
      + ` · ${view.adjust === "none" ? "raw" : `adjusted: ${view.adjust}`} · UTC`;
    chart.setBars(bars, title, timeframeSeconds(view.timeframe) < 86_400);
    applyIndicators(false);
    el.chartMessage.hidden = bars.length > 0;
    el.chartMessage.textContent = source
      ? `No ${symbol} ${view.timeframe} bars in this range.`
      : `Nothing is stored for ${symbol}. Fetch it first: tickvault fetch ${symbol} --timeframe 1d --start 2024-01-01`;
    updateHookBars();
    hook.loads++;
    say(bars.length ? `${symbol} ${view.timeframe}: ${bars.length.toLocaleString("en-US")} bars` : el.chartMessage.textContent);
    live.follow(source ? { symbol, timeframe: source, adjust: view.adjust } : null);
    await loadDetails(gen, signal);
  } catch (err) {
    if (isAbort(err) || gen !== generation) return;
    chart.setBars([], "");
    updateHookBars();
    el.chartMessage.hidden = false;
    el.chartMessage.textContent = errorText(err);
    say(errorText(err), "error");
  } finally {
    if (gen === generation) hook.loading = false;
  }
}

/** Coverage, quality and quarantine of the stored series behind the chart. */
async function loadDetails(gen: number, signal?: AbortSignal): Promise<void> {
  const symbol = view.symbol;
  const source = sourceTf;
  if (!symbol) return;
  const stats = storedFor(symbol).find((s) => s.timeframe === source) ?? null;
  const derivedNote = source && source !== view.timeframe
    ? `${view.timeframe} is resampled on read from the stored ${source} series shown here.` : "";
  renderSeries(el.series, stats, view.timeframe, derivedNote);
  if (!symbol || !source || !stats) {
    timeline.set({ domain: null, ledger: [], holes: [], quarantined: [], loaded: null, holesRange: null,
      note: `Nothing stored for ${symbol}.` });
    renderQuality(el.quality, null, null, () => undefined);
    hook.detailsLoads++;
    return;
  }
  const srcSec = timeframeSeconds(source);
  const firstMs = stats.first ? parseIsoMs(stats.first) : Number.NaN;
  const endMs = stats.last ? parseIsoMs(stats.last) + srcSec * 1000 : Number.NaN;
  const loaded: [number, number] | null = chart.first && chart.last
    ? [chart.first.time * 1000, (chart.last.time + timeframeSeconds(view.timeframe)) * 1000] : null;
  const iso = (ms: number): string => secondsToIso(Math.floor(ms / 1000));
  let coverage: Coverage;
  let holesRange: [number, number] | null = [firstMs, endMs];
  let note = "";
  try {
    coverage = await api.coverage(symbol, source, iso(firstMs), iso(Math.ceil(endMs / 1000) * 1000), signal);
  } catch (err) {
    // The API bounds how much calendar one coverage request may plan: fall back to the loaded bars.
    if (!(err instanceof ApiError) || err.status !== 400 || !loaded) throw err;
    coverage = await api.coverage(symbol, source, iso(loaded[0]), iso(Math.min(loaded[1], endMs)), signal);
    holesRange = [loaded[0], Math.min(loaded[1], endMs)];
    note = `Holes shown for the loaded range; the whole series has ${stats.holes.toLocaleString("en-US")}.`;
  }
  const [quality, quarantine] = await Promise.all([
    api.quality(symbol, source, signal).catch((e: unknown) => {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }) as Promise<QualityReport | null>,
    api.quarantine(symbol, source, signal) as Promise<Quarantine>,
  ]);
  if (gen !== generation) return;
  const ledger = coverage.intervals.map((i) => {
    const start = parseIsoMs(i.start);
    const end = parseIsoMs(i.end);
    return { start, end, state: i.state,
      title: `${i.state}: ${iso(start)} → ${iso(end)}${i.provider ? ` from ${i.provider}` : ""}` };
  });
  let holes = spansFromPairs(coverage.missing ?? [], "hole (not covered)");
  if (holesRange && holesRange[0] > firstMs) {
    // Also show the whole series' first holes the status report lists.
    holes = [...holes, ...spansFromPairs(stats.missing_spans, "hole (not covered)")];
  }
  const quarantined = quarantine.rows.map((r) => {
    const start = parseIsoMs(r.ts);
    return { start, end: start + srcSec * 1000, title: `quarantined ${iso(start)}: ${r.reason}` };
  });
  const starts = [firstMs, ...ledger.map((s) => s.start)].filter(Number.isFinite);
  const ends = [endMs, ...ledger.map((s) => s.end)].filter(Number.isFinite);
  const data: TimelineData = {
    domain: starts.length ? [Math.min(...starts), Math.max(...ends)] : null,
    ledger, holes, quarantined, loaded, holesRange, note,
  };
  el.timelineTitle.textContent = `${symbol} ${source}`;
  timeline.set(data);
  chart.setQuarantined(quarantine.rows.map((r) => isoToSeconds(r.ts)));
  renderQuality(el.quality, quality, quarantine, (t) => {
    if (!chart.reveal(isoToSeconds(t))) say("That row is outside the loaded bars; widen the range to see it.");
  });
  hook.detailsLoads++;
}

function scheduleDetails(): void {
  window.clearTimeout(detailsTimer);
  detailsTimer = window.setTimeout(() => {
    const gen = generation;
    refreshCatalog().then(() => loadDetails(gen)).catch((err: unknown) => {
      if (!isAbort(err)) say(errorText(err), "error");
    });
  }, 1000);
}

function applyIndicators(redraw = true): void {
  try {
    const specs = parseIndicators(el.indicators.value);
    view.indicators = specs.map((s) => s.name).join(", ");
    chart.setIndicators(specs);
    el.indicators.classList.remove("invalid");
    hook.indicators = specs.map((s) => s.name);
    if (redraw) writeHash();
  } catch (err) {
    el.indicators.classList.add("invalid");
    say(errorText(err), "error");
  }
}

function updateHookBars(): void {
  hook.barsDrawn = chart.seriesLength();
  hook.firstBar = chart.first ? secondsToIso(chart.first.time) : null;
  hook.lastBar = chart.last ? secondsToIso(chart.last.time) : null;
}

// -- live ----------------------------------------------------------------------------------------

function onLiveBars(target: Target, bars: Bar[]): void {
  if (target.symbol !== view.symbol || target.timeframe !== sourceTf || target.adjust !== view.adjust) return;
  hook.liveMessages++;
  window.setTimeout(showLiveSummary, 0); // after the bars below are counted
  const endMs = view.range === "custom" && view.end ? parseIsoMs(view.end) : Number.POSITIVE_INFINITY;
  if (sourceTf === view.timeframe) {
    const fresh = toChartBars(bars).filter((b) => b.time * 1000 < endMs);
    hook.liveBars += chart.mergeBars(fresh);
    updateHookBars();
    if (fresh.length) {
      el.chartMessage.hidden = true;
      say(`${view.symbol} ${view.timeframe}: ${chart.length.toLocaleString("en-US")} bars · live bar ${hook.lastBar}`);
    }
  } else {
    // Resampled view: re-derive from the last drawn bar (it may have grown) to the new data.
    const gen = generation;
    const symbol = view.symbol;
    const tf = view.timeframe;
    const newest = Math.max(...bars.map((b) => isoToSeconds(b.ts)));
    const from = chart.last?.time ?? Math.min(...bars.map((b) => isoToSeconds(b.ts)));
    const to = newest + timeframeSeconds(sourceTf ?? tf);
    derivedRefresh = derivedRefresh.then(async () => {
      const res = await api.bars(symbol, tf, secondsToIso(from), secondsToIso(to), view.adjust);
      if (gen !== generation) return;
      const fresh = toChartBars(res.bars).filter((b) => b.time * 1000 < endMs);
      hook.liveBars += chart.mergeBars(fresh);
      updateHookBars();
    }).catch((err: unknown) => say(errorText(err), "error"));
  }
  scheduleDetails();
}

function showLive(state: LiveState, detail: string): void {
  hook.wsState = state;
  el.live.className = `live ${state}`;
  const text = state === "open" ? "live" : state === "connecting" ? "connecting…" : state === "refused"
    ? "refused" : state === "closed" ? "reconnecting…" : "offline";
  const span = el.live.querySelector("span");
  if (span) span.textContent = text;
  el.live.title = detail ? `Live updates: ${text} (${detail})` : `Live updates: ${text}`;
  showLiveSummary();
}

function showLiveSummary(): void {
  const line = document.getElementById("ops-live");
  if (line) line.textContent = liveSummary();
}

function liveSummary(): string {
  const subs = hook.subscriptions.length ? `subscribed to ${hook.subscriptions.join(", ")}` : "no subscription";
  const parts = [`${hook.wsState}`, subs, `${hook.liveBars} bars received`];
  if (live.lastHeartbeat) parts.push(`last heartbeat ${live.lastHeartbeat}`);
  return parts.join(", ");
}

async function refreshOps(): Promise<void> {
  try {
    const snap = await renderOps(el.ops, api, liveSummary());
    hook.cacheHitRate = snap.cacheHitRate;
    hook.responseCacheHitRate = snap.responseCacheHitRate;
    hook.providers = snap.providers.map((p) => p.name);
    hook.opsLoads++;
  } catch (err) {
    el.ops.replaceChildren(h("p", { class: "bad" }, errorText(err)));
  }
}

// -- controls ------------------------------------------------------------------------------------

const search = new Search(api, el.symbol, el.suggest, () => catalog, (symbol) => void loadSymbol(symbol));

el.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  search.submit();
});
el.timeframe.addEventListener("change", () => {
  view.timeframe = el.timeframe.value;
  if (view.symbol) void loadSymbol(view.symbol);
  else writeHash();
});
el.range.addEventListener("change", () => {
  view.range = el.range.value;
  el.custom.hidden = view.range !== "custom";
  if (view.range === "custom") {
    if (!el.start.value && chart.first) el.start.value = secondsToIso(chart.first.time).slice(0, 10);
    el.start.focus();
    return;
  }
  if (view.symbol) void loadSymbol(view.symbol);
});
const applyCustom = (): void => {
  view.start = el.start.value.trim();
  view.end = el.end.value.trim();
  if (view.symbol) void loadSymbol(view.symbol);
};
el.applyRange.addEventListener("click", applyCustom);
for (const input of [el.start, el.end]) {
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") applyCustom();
  });
}
el.adjust.addEventListener("change", () => {
  view.adjust = el.adjust.value;
  if (view.symbol) void loadSymbol(view.symbol);
});
el.indicators.addEventListener("change", () => applyIndicators());
el.apiKey.value = apiKey() ?? "";
el.keyForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = el.apiKey.value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  live.restart();
  if (view.symbol) void loadSymbol(view.symbol);
  void refreshOps();
});
window.addEventListener("hashchange", () => {
  const next = readHash();
  if (next.symbol && (next.symbol !== view.symbol || next.timeframe !== view.timeframe)) {
    view = next;
    syncControls();
    void loadSymbol(next.symbol);
  }
});

// -- start ---------------------------------------------------------------------------------------

syncControls();
applyIndicators(false);
showLive("idle", "");
void refreshOps();
window.setInterval(() => {
  if (!document.hidden) void refreshOps(); // a background tab costs the server nothing
}, OPS_PERIOD_MS);
if (view.symbol) {
  void loadSymbol(view.symbol);
} else {
  refreshCatalog().catch((err: unknown) => say(errorText(err), "error"));
  el.symbol.focus();
}
hook.ready = true;
