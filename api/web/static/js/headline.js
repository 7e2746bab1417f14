// headline.js: the figures at the top of the page.

import { $, setText } from "./dom.js";
import { int, rate, percent, age, clock } from "./format.js";

function put(name, text, value) {
  const el = $(`[data-metric="${name}"]`);
  setText(el, text);
  if (value !== undefined && el.dataset.value !== String(value)) el.dataset.value = String(value);
  return el;
}

/** Headline shows the stream's figures and keeps their freshness ticking. */
export class Headline {
  constructor() {
    this.fresh = null; // freshness_seconds when received
    this.receivedAt = 0;
    setInterval(() => this.tick(), 1000);
  }

  /** stats shows one /stats body (of the page's window, grouped by domain). */
  stats(body) {
    put("total", int(body.total), body.total);
    const share = body.bot_share ?? 0;
    put("bot_share", percent(share), share);
    const meter = $('[data-meter="bot_share"]');
    const width = `${(share * 100).toFixed(1)}%`;
    if (meter.style.width !== width) meter.style.width = width;
    const wikis = Object.keys(body.stats || {}).length;
    put("wikis", int(wikis), wikis);
    const types = Object.entries(body.types || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
    const total = body.total || 1;
    setText($('[data-metric="types"]'), types.length ? types.map(([k, v]) => `${k} ${percent(v / total)}`).join(" · ") : "\u00a0");
    this.fresh = body.freshness_seconds;
    this.receivedAt = performance.now();
    const asOf = body.as_of ? Date.parse(body.as_of) : null;
    const asOfEl = $('[data-metric="as_of"]');
    setText(asOfEl, asOf ? `newest edit made at ${clock(asOf)}` : "no edit counted yet");
    asOfEl.dataset.value = body.as_of || "";
    this.tick();
  }

  /** rate shows edits per minute (over the last 5 minutes). */
  rate(epm) {
    put("epm", rate(epm), epm);
  }

  /** freshness is how old the counters are now, in seconds (null when unknown). */
  freshness() {
    if (this.fresh == null) return null;
    return this.fresh + (performance.now() - this.receivedAt) / 1000;
  }

  tick() {
    const f = this.freshness();
    const el = put("freshness", f == null ? "–" : age(f), f == null ? "" : f.toFixed(1));
    const level = f == null ? "" : f > 300 ? "bad" : f > 60 ? "warn" : "";
    if (el.dataset.level !== level) el.dataset.level = level;
  }
}
