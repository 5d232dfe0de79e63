// `window.__tickvault`: what the page shows, readable from outside.
//
// End-to-end tests (tests/dashboard/) and anyone automating the page poll these fields instead
// of scraping pixels: how many bars the chart series holds, the last bar, how many bars came
// over the WebSocket, the indicator values drawn. `inkPixels()` is the one pixel check: it
// counts candle-coloured pixels in a screenshot of the chart, so "the chart drew bars" is
// verified on the canvas itself. The fields are a stable, documented contract (docs/dashboard.md).

import type { ChartBar, ChartView } from "./chart";
import type { Timeline } from "./timeline";

export interface Hook {
  version: 1;
  ready: boolean;
  loading: boolean;
  loads: number;
  detailsLoads: number;
  opsLoads: number;
  symbol: string | null;
  timeframe: string | null;
  sourceTimeframe: string | null;
  adjust: string | null;
  indicators: string[];
  barsDrawn: number;
  firstBar: string | null;
  lastBar: string | null;
  liveBars: number;
  liveMessages: number;
  wsState: string;
  /** What the server confirmed this page is subscribed to (`AAPL 1m splits`). */
  subscriptions: string[];
  /** Hit rate of the vault's read cache (`/health/cache`). */
  cacheHitRate: number | null;
  /** Hit rate of the service's latest-N response cache (`/metrics`). */
  responseCacheHitRate: number | null;
  providers: string[];
  error: string | null;
  bars(): ChartBar[];
  indicator(name: string, output?: string): (number | null)[];
  inkPixels(): number;
  timeline(): { ledger: number; holes: number; quarantined: number };
  load(symbol: string, timeframe?: string): Promise<void>;
}

declare global {
  interface Window {
    __tickvault: Hook;
  }
}

export function installHook(parts: { chart: ChartView; timeline: Timeline;
  load: (symbol: string, timeframe?: string) => Promise<void> }): Hook {
  const hook: Hook = {
    version: 1,
    ready: false,
    loading: false,
    loads: 0,
    detailsLoads: 0,
    opsLoads: 0,
    symbol: null,
    timeframe: null,
    sourceTimeframe: null,
    adjust: null,
    indicators: [],
    barsDrawn: 0,
    firstBar: null,
    lastBar: null,
    liveBars: 0,
    liveMessages: 0,
    wsState: "idle",
    subscriptions: [],
    cacheHitRate: null,
    responseCacheHitRate: null,
    providers: [],
    error: null,
    bars: () => parts.chart.snapshot(),
    indicator: (name, output = "value") => parts.chart.indicatorValues(name, output),
    inkPixels: () => parts.chart.inkPixels(),
    timeline: () => parts.timeline.counts(),
    load: parts.load,
  };
  window.__tickvault = hook;
  return hook;
}
