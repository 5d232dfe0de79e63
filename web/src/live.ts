// The live feed: one WebSocket to `/v1/stream`, subscribed to the series on screen.
//
// Protocol (docs/service.md): send `{"action": "subscribe", symbols, timeframes, adjust}`,
// receive `{"type": "bars", symbol, timeframe, adjust, bars: [...]}` for every write that
// stored rows, and heartbeats. Browsers cannot set headers on a WebSocket, so an API key is
// sent as `{"action": "auth"}` first. A dropped connection is retried with backoff (1 s up to
// 30 s); a refusal (4400 bad subscription, 4401/4403 key) is shown and not retried.

import type { Bar } from "./api";

export type LiveState = "idle" | "connecting" | "open" | "closed" | "refused";

export interface Target {
  symbol: string;
  timeframe: string;
  adjust: string;
}

export interface LiveHandlers {
  onBars: (target: Target, bars: Bar[]) => void;
  onState: (state: LiveState, detail: string) => void;
  /** The server's confirmation: every subscription of this connection, as `SYMBOL timeframe adjust`. */
  onSubscribed: (subscriptions: string[]) => void;
}

const REFUSED = new Set([4400, 4401, 4403, 4404]);

export class LiveFeed {
  private ws: WebSocket | null = null;
  private target: Target | null = null;
  private retry = 1000;
  private timer: number | undefined;
  private stateValue: LiveState = "idle";
  messages = 0;
  lastHeartbeat: string | null = null;

  constructor(private readonly apiKey: () => string | null, private readonly handlers: LiveHandlers) {}

  get state(): LiveState {
    return this.stateValue;
  }

  /** Follow `target` (re-subscribing on the open socket, or opening one). */
  follow(target: Target | null): void {
    const previous = this.target;
    this.target = target;
    if (!target) {
      this.close();
      return;
    }
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      if (previous) {
        this.send({ action: "unsubscribe", symbols: [previous.symbol], timeframes: [previous.timeframe],
          adjust: previous.adjust });
      }
      this.subscribe();
    } else if (!this.ws || this.ws.readyState === WebSocket.CLOSED) {
      this.open();
    }
  }

  /** Reconnect now (e.g. after the API key changed). */
  restart(): void {
    this.close();
    if (this.target) this.open();
  }

  private setState(state: LiveState, detail = ""): void {
    this.stateValue = state;
    this.handlers.onState(state, detail);
  }

  private url(): string {
    const u = new URL("./v1/stream", window.location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.hash = "";
    u.search = "";
    return u.toString();
  }

  private open(): void {
    window.clearTimeout(this.timer);
    this.setState("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.retry = 1000;
      const key = this.apiKey();
      if (key) this.send({ action: "auth", api_key: key });
      this.subscribe();
      this.setState("open");
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== "string") return;
      this.messages++;
      let msg: { type?: string; symbol?: string; timeframe?: string; adjust?: string; bars?: Bar[]; ts?: string;
        subscriptions?: { symbol: string; timeframe: string; adjust: string }[] };
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "subscribed" && Array.isArray(msg.subscriptions)) {
        this.handlers.onSubscribed(msg.subscriptions.map((x) => `${x.symbol} ${x.timeframe} ${x.adjust}`));
      } else if (msg.type === "heartbeat") {
        this.lastHeartbeat = msg.ts ?? null;
      } else if (msg.type === "bars" && msg.symbol && msg.timeframe && Array.isArray(msg.bars)) {
        this.handlers.onBars({ symbol: msg.symbol, timeframe: msg.timeframe, adjust: msg.adjust ?? "splits" },
          msg.bars);
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.handlers.onSubscribed([]);
      if (REFUSED.has(ev.code)) {
        this.setState("refused", `${ev.code} ${ev.reason}`);
        return;
      }
      this.setState("closed", ev.reason || `code ${ev.code}`);
      if (this.target) {
        this.timer = window.setTimeout(() => this.open(), this.retry);
        this.retry = Math.min(this.retry * 2, 30_000);
      }
    };
  }

  private subscribe(): void {
    const t = this.target;
    if (t) this.send({ action: "subscribe", symbols: [t.symbol], timeframes: [t.timeframe], adjust: t.adjust });
  }

  private send(msg: Record<string, unknown>): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private close(): void {
    window.clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "dashboard closed the stream");
    this.setState("idle");
  }
}
