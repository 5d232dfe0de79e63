// The price chart: candles, volume, indicator lines and quarantine markers on TradingView's
// lightweight-charts (bundled from npm at build time, no CDN).
//
// The view owns the bars it draws (sorted, one per timestamp), so live updates can be merged
// in: a bar at or after the last one goes through `update()` (cheap, no redraw of history);
// an older one (a revision) re-sets the whole series.

import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineSeries,
  createChart,
  createSeriesMarkers,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type LineData,
  type MouseEventParams,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";

import { compute, type IndicatorSpec } from "./indicators";

export interface ChartBar {
  time: number; // UTC seconds
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export const UP = "#26a69a";
export const DOWN = "#ef5350";
const QUARANTINE = "#c77dff";
const PALETTE = ["#f5c542", "#4fc3f7", "#ff8a65", "#aed581", "#ba68c8", "#90a4ae", "#f06292", "#4db6ac"];

interface Drawn {
  spec: IndicatorSpec;
  series: Map<string, ISeriesApi<"Line"> | ISeriesApi<"Histogram">>;
  values: Record<string, Float64Array>;
}

function ts(t: number): UTCTimestamp {
  return t as UTCTimestamp;
}

/** Index of the first bar with time >= t. */
function lowerBound(bars: ChartBar[], t: number): number {
  let lo = 0;
  let hi = bars.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((bars[mid] as ChartBar).time < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  return v.toLocaleString("en-US", { maximumFractionDigits: a >= 1000 ? 2 : a >= 1 ? 4 : 8 });
}

export class ChartView {
  readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private readonly markers: ISeriesMarkersPluginApi<Time>;
  private readonly legend: HTMLElement;
  private bars: ChartBar[] = [];
  private specs: IndicatorSpec[] = [];
  private drawn: Drawn[] = [];
  private quarantined: number[] = [];
  private title = "";

  constructor(container: HTMLElement, legend: HTMLElement) {
    this.legend = legend;
    this.chart = createChart(container, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "#131722" },
        textColor: "#b2b5be",
        fontFamily: "system-ui, -apple-system, Segoe UI, sans-serif",
        panes: { separatorColor: "#2a2e39" },
      },
      grid: { vertLines: { color: "#1e222d" }, horzLines: { color: "#1e222d" } },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderColor: "#2a2e39" },
      timeScale: { borderColor: "#2a2e39", timeVisible: true, secondsVisible: false },
      localization: { locale: "en-US" },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "volume",
      priceFormat: { type: "volume" },
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.markers = createSeriesMarkers(this.candles, []);
    this.chart.subscribeCrosshairMove((p) => this.showLegend(p));
  }

  /** Replace everything drawn with `bars` (sorted by time, unique). */
  setBars(bars: ChartBar[], title: string, intraday = true): void {
    this.bars = bars;
    this.title = title;
    // Daily and longer bars are labelled by session date: a time of day would only mislead.
    this.chart.timeScale().applyOptions({ timeVisible: intraday });
    this.candles.setData(bars.map((b) => ({ time: ts(b.time), open: b.open, high: b.high, low: b.low, close: b.close })));
    this.volume.setData(bars.map((b) => this.volumePoint(b)));
    this.redrawIndicators();
    this.redrawMarkers();
    this.chart.timeScale().fitContent();
    this.showLegend(null);
  }

  /** Merge new or revised bars (e.g. from the live stream); returns how many were applied. */
  mergeBars(incoming: ChartBar[]): number {
    if (incoming.length === 0) return 0;
    const sorted = [...incoming].sort((a, b) => a.time - b.time);
    let reset = false;
    for (const bar of sorted) {
      const last = this.bars[this.bars.length - 1];
      if (last === undefined || bar.time > last.time) {
        this.bars.push(bar);
      } else if (bar.time === last.time) {
        this.bars[this.bars.length - 1] = bar;
      } else {
        const i = lowerBound(this.bars, bar.time);
        if (this.bars[i]?.time === bar.time) this.bars[i] = bar;
        else this.bars.splice(i, 0, bar);
        reset = true;
      }
      if (!reset) {
        this.candles.update({ time: ts(bar.time), open: bar.open, high: bar.high, low: bar.low, close: bar.close });
        this.volume.update(this.volumePoint(bar));
      }
    }
    if (reset) {
      this.candles.setData(this.bars.map((b) => ({ time: ts(b.time), open: b.open, high: b.high, low: b.low,
        close: b.close })));
      this.volume.setData(this.bars.map((b) => this.volumePoint(b)));
    }
    this.redrawIndicators();
    this.redrawMarkers();
    this.showLegend(null);
    return sorted.length;
  }

  /** Draw these indicators (replacing the previous set). */
  setIndicators(specs: IndicatorSpec[]): void {
    for (const d of this.drawn) for (const s of d.series.values()) this.chart.removeSeries(s);
    this.drawn = [];
    // Oscillator panes left empty by the removal go too (pane 0 holds the prices).
    for (let i = this.chart.panes().length - 1; i > 0; i--) this.chart.removePane(i);
    this.specs = specs;
    let colour = 0;
    let pane = 1;
    for (const spec of specs) {
      const series = new Map<string, ISeriesApi<"Line"> | ISeriesApi<"Histogram">>();
      const paneIndex = spec.overlay ? 0 : pane++;
      const next = (): string => PALETTE[colour++ % PALETTE.length] as string;
      const line = (key: string, color: string, width: 1 | 2 = 2): void => {
        series.set(key, this.chart.addSeries(LineSeries, {
          color, lineWidth: width, priceLineVisible: false, lastValueVisible: key !== "middle",
          crosshairMarkerVisible: false, title: key === "value" || key === "line" ? spec.name : "",
        }, paneIndex));
      };
      if (spec.kind === "bb") {
        const c = next();
        line("upper", c, 1);
        line("middle", c, 1);
        line("lower", c, 1);
      } else if (spec.kind === "macd") {
        series.set("hist", this.chart.addSeries(HistogramSeries, { priceLineVisible: false, lastValueVisible: false },
          paneIndex));
        line("line", next());
        line("signal", next(), 1);
      } else {
        line("value", next());
      }
      if (spec.kind === "rsi") {
        const s = series.get("value") as ISeriesApi<"Line">;
        for (const level of [30, 70]) {
          s.createPriceLine({ price: level, color: "#555c6b", lineWidth: 1, lineStyle: 2, axisLabelVisible: false,
            title: "" });
        }
      }
      this.drawn.push({ spec, series, values: {} });
    }
    const panes = this.chart.panes();
    panes[0]?.setStretchFactor(3);
    this.redrawIndicators();
  }

  /** Mark quarantined rows (UTC seconds) on the candles. */
  setQuarantined(times: number[]): void {
    this.quarantined = [...times].sort((a, b) => a - b);
    this.redrawMarkers();
  }

  // -- what the page and its tests read back ---------------------------------------------------

  get length(): number {
    return this.bars.length;
  }

  get first(): ChartBar | undefined {
    return this.bars[0];
  }

  get last(): ChartBar | undefined {
    return this.bars[this.bars.length - 1];
  }

  snapshot(): ChartBar[] {
    return this.bars.map((b) => ({ ...b }));
  }

  /** Bars the candle series actually holds (the library's own count). */
  seriesLength(): number {
    return this.candles.data().length;
  }

  indicatorValues(name: string, output = "value"): (number | null)[] {
    const d = this.drawn.find((x) => x.spec.name === name);
    const v = d?.values[output];
    return v ? Array.from(v, (x) => (Number.isFinite(x) ? x : null)) : [];
  }

  /** Pixels of the rendered chart in the candle colours: > 0 once candles are really painted. */
  inkPixels(): number {
    const canvas = this.chart.takeScreenshot();
    const ctx = canvas.getContext("2d");
    if (!ctx || canvas.width === 0 || canvas.height === 0) return 0;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const targets = [UP, DOWN].map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      for (const [r, g, b] of targets as [number, number, number][]) {
        if (Math.abs((data[i] as number) - r) < 6 && Math.abs((data[i + 1] as number) - g) < 6
          && Math.abs((data[i + 2] as number) - b) < 6) {
          count++;
          break;
        }
      }
    }
    return count;
  }

  /** Scroll so that UTC second `t` is in view (if it is within the loaded bars). */
  reveal(t: number): boolean {
    if (this.bars.length === 0) return false;
    const i = lowerBound(this.bars, t);
    if (i >= this.bars.length && t > (this.last as ChartBar).time) return false;
    const ts_ = this.chart.timeScale();
    const range = ts_.getVisibleLogicalRange();
    const width = range ? Math.max(20, range.to - range.from) : 100;
    ts_.setVisibleLogicalRange({ from: i - width / 2, to: i + width / 2 });
    return true;
  }

  // -- internals ---------------------------------------------------------------------------------

  private volumePoint(b: ChartBar): { time: UTCTimestamp; value: number; color: string } {
    return { time: ts(b.time), value: b.volume, color: b.close >= b.open ? "rgba(38,166,154,0.45)" :
      "rgba(239,83,80,0.45)" };
  }

  private redrawIndicators(): void {
    if (this.drawn.length === 0) return;
    const closes = Float64Array.from(this.bars, (b) => b.close);
    for (const d of this.drawn) {
      d.values = compute(d.spec, closes);
      for (const [key, series] of d.series) {
        const values = d.values[key];
        if (!values) continue;
        const points: LineData[] = [];
        for (let i = 0; i < values.length; i++) {
          const v = values[i] as number;
          if (!Number.isFinite(v)) continue;
          const p: LineData & { color?: string } = { time: ts((this.bars[i] as ChartBar).time), value: v };
          if (key === "hist") p.color = v >= 0 ? "rgba(38,166,154,0.6)" : "rgba(239,83,80,0.6)";
          points.push(p);
        }
        series.setData(points);
      }
    }
  }

  private redrawMarkers(): void {
    const marks: SeriesMarker<Time>[] = [];
    if (this.bars.length > 0) {
      const first = (this.first as ChartBar).time;
      const last = (this.last as ChartBar).time;
      let prev = Number.NaN;
      for (const t of this.quarantined) {
        if (t < first || t > last) continue;
        // A held-back row usually left a hole: pin the marker to the next bar drawn.
        const at = (this.bars[Math.min(lowerBound(this.bars, t), this.bars.length - 1)] as ChartBar).time;
        if (at === prev) continue;
        prev = at;
        marks.push({ time: ts(at), position: "aboveBar", color: QUARANTINE, shape: "arrowDown", text: "Q" });
      }
    }
    this.markers.setMarkers(marks);
  }

  private showLegend(p: MouseEventParams | null): void {
    let bar: ChartBar | undefined;
    let index = this.bars.length - 1;
    if (p?.time !== undefined) {
      index = lowerBound(this.bars, p.time as number);
      bar = this.bars[index];
    } else {
      bar = this.last;
    }
    const parts: string[] = [];
    if (bar) {
      const change = bar.close - bar.open;
      parts.push(`O ${fmt(bar.open)}  H ${fmt(bar.high)}  L ${fmt(bar.low)}  C ${fmt(bar.close)}`
        + `  ${change >= 0 ? "+" : ""}${fmt(change)}  V ${fmt(bar.volume)}`);
    }
    const values: string[] = [];
    for (const d of this.drawn) {
      const key = d.values.value ? "value" : d.values.line ? "line" : "middle";
      const v = d.values[key]?.[index];
      if (v !== undefined) values.push(`${d.spec.name} ${fmt(v)}`);
    }
    this.legend.replaceChildren();
    const head = document.createElement("div");
    head.className = "legend-title";
    head.textContent = this.title;
    const ohlc = document.createElement("div");
    ohlc.textContent = parts.join("");
    const ind = document.createElement("div");
    ind.className = "legend-ind";
    ind.textContent = values.join("   ");
    this.legend.append(head, ohlc, ind);
    this.legend.hidden = this.title === "";
  }

  /** The indicator specs currently drawn. */
  get indicators(): IndicatorSpec[] {
    return this.specs;
  }
}
