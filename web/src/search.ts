// Symbol search: suggestions from `/v1/instruments?q=` and the stored series, as you type.
// Enter loads the text as typed (or the suggestion picked with the arrow keys); a click loads
// the suggestion clicked.

import type { Api, SeriesStats } from "./api";
import { h } from "./dom";

interface Suggestion {
  symbol: string;
  detail: string;
}

export class Search {
  private items: Suggestion[] = [];
  private active = -1;
  private timer: number | undefined;
  private ask = 0;

  constructor(private readonly api: Api, private readonly input: HTMLInputElement,
    private readonly list: HTMLUListElement, private readonly series: () => SeriesStats[],
    private readonly choose: (symbol: string) => void) {
    input.addEventListener("input", () => {
      window.clearTimeout(this.timer);
      this.timer = window.setTimeout(() => void this.suggest(), 120);
    });
    input.addEventListener("keydown", (ev) => this.key(ev));
    input.addEventListener("blur", () => window.setTimeout(() => this.hide(), 150));
    input.addEventListener("focus", () => {
      if (input.value) void this.suggest();
    });
  }

  /** Load the highlighted suggestion or the typed text. */
  submit(): void {
    const pick = this.items[this.active];
    const symbol = (pick?.symbol ?? this.input.value).trim().toUpperCase();
    this.hide();
    if (!symbol) return;
    this.input.value = symbol;
    this.input.blur();
    this.choose(symbol);
  }

  private key(ev: KeyboardEvent): void {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      if (this.items.length === 0) return;
      ev.preventDefault();
      const step = ev.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.items.length) % this.items.length;
      this.draw();
    } else if (ev.key === "Escape") {
      this.hide();
    }
  }

  private async suggest(): Promise<void> {
    const q = this.input.value.trim();
    const ask = ++this.ask;
    if (!q) {
      this.hide();
      return;
    }
    const needle = q.toUpperCase();
    const found = new Map<string, Suggestion>();
    const stored = new Map<string, string[]>();
    for (const s of this.series()) {
      if (!s.symbol.includes(needle)) continue;
      stored.set(s.symbol, [...(stored.get(s.symbol) ?? []), s.timeframe]);
    }
    try {
      const page = await this.api.instruments(q);
      for (const i of page.items) {
        const tfs = stored.get(i.symbol);
        found.set(i.symbol, { symbol: i.symbol, detail: [i.name, i.asset_class, i.exchange ?? i.calendar,
          tfs ? `stored: ${tfs.join(" ")}` : "nothing stored"].filter(Boolean).join(" · ") });
      }
    } catch {
      // Suggestions are a convenience: the stored series below still help, and Enter still works.
    }
    if (ask !== this.ask) return;
    for (const [symbol, tfs] of stored) {
      if (!found.has(symbol)) found.set(symbol, { symbol, detail: `stored: ${tfs.join(" ")}` });
    }
    // Exact and prefix matches first, then the rest alphabetically.
    const rank = (s: string): number => (s === needle ? 0 : s.startsWith(needle) ? 1 : 2);
    this.items = [...found.values()].sort((a, b) => rank(a.symbol) - rank(b.symbol) || a.symbol.localeCompare(b.symbol))
      .slice(0, 12);
    // Highlight only an exact match: Enter must load "AA" as typed, not the "AAPL" suggested below it.
    this.active = this.items.findIndex((s) => s.symbol === needle);
    this.draw();
  }

  private draw(): void {
    this.list.replaceChildren(...this.items.map((s, i) => {
      const li = h("li", { role: "option", "aria-selected": String(i === this.active), "data-symbol": s.symbol },
        h("b", {}, s.symbol), h("span", { class: "muted" }, s.detail));
      li.addEventListener("mousedown", (ev) => {
        ev.preventDefault(); // keep focus so blur does not hide the list before the click lands
        this.active = i;
        this.submit();
      });
      return li;
    }));
    this.list.hidden = this.items.length === 0;
  }

  private hide(): void {
    this.items = [];
    this.active = -1;
    this.list.hidden = true;
    this.list.replaceChildren();
  }
}
