// The coverage timeline: what the ledger says about a series over its whole span.
//
// Three rows share one time axis: the ledger's intervals by state (final, provisional, empty
// = asked and nothing there), the holes (trading time inside the span that no interval covers:
// the planner's `missing`), and the quarantined rows. A bracket shows the bars loaded in the
// chart; clicking the strip scrolls the chart there. Tiny intervals get a minimum width so a
// one-minute hole in a year stays visible, and neighbours closer than a pixel are merged so a
// long ledger draws as a few hundred rectangles, not thousands.

import { label, parseIsoMs } from "./time";

export interface Span {
  start: number; // ms
  end: number; // ms
  title: string;
}

export interface TimelineData {
  domain: [number, number] | null;
  ledger: (Span & { state: string })[];
  holes: Span[];
  quarantined: Span[];
  loaded: [number, number] | null;
  /** Where holes were computed, when narrower than the domain (the API bounds that request). */
  holesRange: [number, number] | null;
  note: string;
}

const SVG = "http://www.w3.org/2000/svg";
export const STATE_COLOURS: Record<string, string> = {
  final: "#2e9e6b",
  provisional: "#e0a030",
  empty: "#5c6370",
};
const HOLE = "#ef5350";
const QUARANTINE = "#c77dff";
const ROWS = [
  { key: "ledger", label: "ledger" },
  { key: "holes", label: "holes" },
  { key: "quarantine", label: "quarantine" },
] as const;
const LABEL_W = 78;
const ROW_H = 16;
const GAP = 5;
const AXIS_H = 18;

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>):
  SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/**
 * Merge neighbouring spans that share a key when `bridge(gapStart, gapEnd)` allows it (sorted by
 * start; the merged span keeps the first one's tooltip, marked as merged).
 */
function coalesce<T extends Span>(spans: T[], key: (s: T) => string, bridge: (a: number, b: number) => boolean): T[] {
  const out: T[] = [];
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    const prev = out[out.length - 1];
    if (prev && key(prev) === key(s) && (s.start <= prev.end || bridge(prev.end, s.start))) {
      out[out.length - 1] = { ...prev, end: Math.max(prev.end, s.end), title: prev.title.includes("merged") ?
        prev.title : `${prev.title} (merged with its neighbours)` };
    } else {
      out.push({ ...s });
    }
  }
  return out;
}

/** Whether any of `spans` (sorted by start) overlaps `[a, b)`. */
function overlapsAny(spans: Span[], a: number, b: number): boolean {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((spans[mid] as Span).end <= a) lo = mid + 1;
    else hi = mid;
  }
  // Spans do not nest much (holes are disjoint), so the first candidate decides.
  for (let i = lo; i < spans.length && (spans[i] as Span).start < b; i++) {
    if ((spans[i] as Span).end > a) return true;
  }
  return false;
}

export class Timeline {
  private data: TimelineData | null = null;
  private readonly observer: ResizeObserver;

  constructor(private readonly host: HTMLElement, private readonly legend: HTMLElement,
    private readonly onPick: (ms: number) => void) {
    this.observer = new ResizeObserver(() => this.render());
    this.observer.observe(host);
  }

  set(data: TimelineData | null): void {
    this.data = data;
    this.render();
  }

  /** Counts drawn per row (for the page hook). */
  counts(): { ledger: number; holes: number; quarantined: number } {
    return { ledger: this.data?.ledger.length ?? 0, holes: this.data?.holes.length ?? 0,
      quarantined: this.data?.quarantined.length ?? 0 };
  }

  private render(): void {
    this.host.replaceChildren();
    this.legend.replaceChildren();
    const d = this.data;
    const width = Math.max(200, this.host.clientWidth);
    if (!d || !d.domain || d.domain[1] <= d.domain[0]) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = d?.note || "No coverage to show yet.";
      this.host.append(p);
      return;
    }
    const [t0, t1] = d.domain;
    const plotW = width - LABEL_W - 8;
    const x = (ms: number): number => LABEL_W + ((Math.min(Math.max(ms, t0), t1) - t0) / (t1 - t0)) * plotW;
    const msPerPx = (t1 - t0) / plotW;
    const height = ROWS.length * (ROW_H + GAP) + AXIS_H;
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "coverage timeline" });
    ROWS.forEach((row, i) => {
      const y = i * (ROW_H + GAP);
      const text = el("text", { x: 0, y: y + ROW_H - 4, class: "tl-label" });
      text.textContent = row.label;
      svg.append(text, el("rect", { x: LABEL_W, y, width: plotW, height: ROW_H, class: "tl-track" }));
    });
    const bar = (s: Span, row: number, colour: string, cls: string): void => {
      const x0 = x(s.start);
      const w = Math.max(2, x(s.end) - x0);
      const r = el("rect", { x: x0, y: row * (ROW_H + GAP), width: w, height: ROW_H, fill: colour, class: cls });
      const title = el("title", {});
      title.textContent = s.title;
      r.append(title);
      svg.append(r);
    };
    // Between two ledger intervals lies either a hole or time with no trading (nights, weekends,
    // holidays). Where the holes are known, bridge the gaps that hold none, so the ledger reads
    // as continuous coverage and only real holes break it.
    const holes = [...d.holes].sort((a, b) => a.start - b.start);
    const known = d.holesRange ?? [t0, t0];
    const bridge = (a: number, b: number): boolean => b - a <= msPerPx
      || (a >= known[0] && b <= known[1] && !overlapsAny(holes, a, b));
    for (const s of coalesce(d.ledger, (v) => v.state, bridge)) {
      bar(s, 0, STATE_COLOURS[s.state] ?? "#8884d8", `tl-${s.state}`);
    }
    if (d.holesRange && (d.holesRange[0] > t0 || d.holesRange[1] < t1)) {
      // Holes were only computed inside this window: shade the rest of the row as unknown.
      for (const [a, b] of [[t0, d.holesRange[0]], [d.holesRange[1], t1]] as [number, number][]) {
        if (b > a) svg.append(el("rect", { x: x(a), y: ROW_H + GAP, width: Math.max(0, x(b) - x(a)), height: ROW_H,
          class: "tl-unknown" }));
      }
    }
    const near = (a: number, b: number): boolean => b - a <= msPerPx;
    for (const s of coalesce(holes, () => "hole", near)) bar(s, 1, HOLE, "tl-hole");
    for (const s of coalesce(d.quarantined, () => "q", near)) bar(s, 2, QUARANTINE, "tl-quarantine");
    if (d.loaded) {
      const x0 = x(d.loaded[0]);
      svg.append(el("rect", { x: x0 - 1, y: -1, width: Math.max(3, x(d.loaded[1]) - x0 + 2),
        height: ROWS.length * (ROW_H + GAP) - GAP + 2, class: "tl-loaded" }));
    }
    const ticks = Math.max(2, Math.min(8, Math.floor(plotW / 170)));
    const withTime = t1 - t0 < 20 * 86_400_000;
    for (let i = 0; i <= ticks; i++) {
      const ms = t0 + ((t1 - t0) * i) / ticks;
      const tx = x(ms);
      const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
      const text = el("text", { x: tx, y: height - 4, "text-anchor": anchor, class: "tl-axis" });
      text.textContent = label(ms, withTime);
      svg.append(el("line", { x1: tx, x2: tx, y1: ROWS.length * (ROW_H + GAP) - GAP, y2: height - 14,
        class: "tl-tick" }), text);
    }
    svg.addEventListener("click", (ev) => {
      const rect = svg.getBoundingClientRect();
      const px = ev.clientX - rect.left;
      if (px >= LABEL_W) this.onPick(t0 + ((px - LABEL_W) / plotW) * (t1 - t0));
    });
    this.host.append(svg);
    const states = new Map<string, number>();
    for (const s of d.ledger) states.set(s.state, (states.get(s.state) ?? 0) + 1);
    const items: [string, string][] = [...states].map(([k, n]) => [STATE_COLOURS[k] ?? "#8884d8",
      `${k} (${n})`]);
    items.push([HOLE, `holes (${d.holes.length})`], [QUARANTINE, `quarantined rows (${d.quarantined.length})`]);
    for (const [colour, text] of items) {
      const span = document.createElement("span");
      span.className = "swatch";
      const dot = document.createElement("i");
      dot.style.background = colour;
      span.append(dot, text);
      this.legend.append(span);
    }
    if (d.note) {
      const span = document.createElement("span");
      span.className = "muted";
      span.textContent = d.note;
      this.legend.append(span);
    }
  }
}

/** `[start, end]` ISO pairs as spans with a tooltip. */
export function spansFromPairs(pairs: [string, string][], what: string): Span[] {
  return pairs.map(([a, b]) => {
    const start = parseIsoMs(a);
    const end = parseIsoMs(b);
    return { start, end, title: `${what}: ${label(start)} → ${label(end)} UTC` };
  });
}
