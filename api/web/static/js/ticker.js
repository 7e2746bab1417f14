// ticker.js: the live list of edits from /v2/stream/recentchange, with filters.
//
// The filters the stream offers (one wiki or domain, type, bot, namespace, user)
// are sent with the request so that the server sends less; every filter is also
// applied here, so the list holds to them whatever the server sent. A changed
// filter reconnects and fills the list again from the last 30 seconds. A lost
// connection resumes with ?since= a little before the last event arrived (the
// stream's since is the time events entered the log); repeats are dropped by
// meta.id.

import { $, h, link, setText } from "./dom.js";
import { LiveSource } from "./live.js";
import { url } from "./api.js";
import { changeURL, clock, editorKind, int, pageURL, rate, shortWiki, signed, sizeChange, userURL } from "./format.js";

const MAX_ROWS = 60;
const FLUSH_MS = 400;
const BACKFILL_MS = 30_000;
const RESUME_MS = 10_000;
const SEEN_MAX = 5000;
const FILTER_KEYS = ["tw", "tns", "ttype", "tkind", "tmin", "tuser"];

/** filtersOf reads the ticker's filters out of the page state. */
export function filtersOf(s) {
  const wikis = s.tw.split(/[\s,]+/).map((w) => w.trim().toLowerCase()).filter(Boolean);
  return {
    wikis: new Set(wikis),
    ns: s.tns === "" ? null : Number(s.tns),
    type: s.ttype,
    kind: s.tkind,
    min: s.tmin === "" ? 0 : Number(s.tmin),
    user: s.tuser,
  };
}

/** matches reports whether a recentchange event passes the filters f. */
export function matches(ev, f) {
  const domain = (ev.meta && ev.meta.domain) || "";
  if (f.wikis.size && !f.wikis.has(domain.toLowerCase()) && !f.wikis.has(String(ev.wiki || "").toLowerCase())) return false;
  if (f.ns !== null && ev.namespace !== f.ns) return false;
  if (f.type && ev.type !== f.type) return false;
  if (f.kind) {
    const k = editorKind(ev);
    if (f.kind === "human" ? k === "bot" : k !== f.kind) return false;
  }
  if (f.min > 0) {
    const d = sizeChange(ev);
    if (d === null || Math.abs(d) < f.min) return false;
  }
  if (f.user && ev.user !== f.user) return false;
  return true;
}

/**
 * serverParams are the stream's own query filters for f. The stream ANDs its
 * wiki and domain lists, so the wikis go to the server only when they are all
 * database names or all domains; a mixed list is filtered here alone.
 */
export function serverParams(f) {
  const p = {};
  const wikis = [...f.wikis];
  const domains = wikis.filter((w) => w.includes("."));
  if (wikis.length && domains.length === wikis.length) p.domain = domains.join(",");
  else if (wikis.length && domains.length === 0) p.wiki = wikis.join(",");
  if (f.type) p.type = f.type;
  if (f.kind) p.bot = f.kind === "bot" ? "true" : "false";
  if (f.ns !== null) p.namespace = f.ns;
  if (f.user) p.user = f.user;
  return p;
}

/** Ticker connects the stream and renders the list in ol#ticker. */
export class Ticker {
  constructor(store) {
    this.store = store;
    this.list = $("#ticker");
    this.stateEl = $("#ticker-state");
    this.pauseBtn = $("#pause");
    this.form = $("#ticker-filters");
    this.paused = false;
    this.pending = [];
    this.held = 0;
    this.seen = new Set();
    this.lastSeen = 0;
    this.times = []; // meta.dt of the matching events, for the rate
    this.newest = 0; // the newest meta.dt seen, and when it arrived
    this.newestAt = 0;
    this.received = 0;
    this.unreadable = 0;
    this.flushTimer = 0;
    this.f = filtersOf(store.s);
    this.live = new LiveSource({
      url: () => this.streamURL(),
      events: ["message"],
      onEvent: (_, ev) => this.onMessage(ev),
      onState: (state, info) => this.onState(state, info),
    });
    this.bindForm();
    this.pauseBtn.addEventListener("click", () => this.togglePause());
    store.on((changed) => {
      if (FILTER_KEYS.some((k) => changed.has(k))) this.refilter();
    });
    setInterval(() => this.showRate(), 1000);
    this.showFilterCount(true);
    this.placeholder();
  }

  start() {
    this.live.start();
  }

  stop() {
    this.live.stop();
  }

  streamURL() {
    const since = this.lastSeen ? this.lastSeen - RESUME_MS : Date.now() - BACKFILL_MS;
    return url("/v2/stream/recentchange", { ...serverParams(this.f), since: Math.round(since) });
  }

  bindForm() {
    const s = this.store.s;
    for (const k of FILTER_KEYS) this.form.elements[k].value = s[k];
    let timer = 0;
    const push = () => {
      const patch = {};
      for (const k of FILTER_KEYS) patch[k] = this.form.elements[k].value;
      this.store.set(patch);
    };
    this.form.addEventListener("input", (e) => {
      clearTimeout(timer);
      timer = setTimeout(push, e.target.tagName === "SELECT" ? 0 : 350);
    });
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      clearTimeout(timer);
      push();
    });
    this.store.on((changed, st) => {
      for (const k of FILTER_KEYS) {
        const el = this.form.elements[k];
        if (changed.has(k) && el.value !== st[k] && document.activeElement !== el) el.value = st[k];
      }
    });
  }

  /** showFilterCount says how many filters are set; on a phone the box starts closed unless some are. */
  showFilterCount(first = false) {
    const n = FILTER_KEYS.filter((k) => this.store.get(k) !== "").length;
    setText($("#filter-count"), n ? `· ${n} set` : "");
    if (first && n === 0 && matchMedia("(max-width: 560px)").matches) $("#filter-box").open = false;
  }

  refilter() {
    this.showFilterCount();
    this.f = filtersOf(this.store.s);
    this.pending = [];
    this.held = 0;
    this.seen.clear();
    this.lastSeen = 0;
    this.times = [];
    this.newest = 0;
    this.list.replaceChildren();
    this.placeholder();
    this.live.restart();
  }

  onState(state, info) {
    const el = this.stateEl;
    if (state === "reconnecting") {
      el.dataset.state = "reconnecting";
      setText(el, `reconnecting (attempt ${info.attempt})…`);
    } else if (state === "error") {
      el.dataset.state = "reconnecting";
      setText(el, info.message);
    } else if (state === "live") {
      el.dataset.state = this.paused ? "paused" : "live";
      setText(el, this.paused ? this.pausedText() : "live");
    } else {
      el.dataset.state = state;
      setText(el, "connecting…");
    }
  }

  onMessage(msg) {
    let ev;
    try {
      ev = JSON.parse(msg.data);
    } catch (err) {
      if (this.unreadable++ === 0) console.warn("ticker: an event is not JSON, skipped (counted below the list):", err.message);
      return;
    }
    if (!ev || !ev.meta || ev.meta.domain === "canary") return;
    const id = ev.meta.id;
    if (id) {
      if (this.seen.has(id)) return;
      this.seen.add(id);
      if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value);
    }
    this.lastSeen = Date.now();
    this.received++;
    if (!matches(ev, this.f)) return;
    const dt = Date.parse(ev.meta.dt);
    if (Number.isFinite(dt)) {
      this.times.push(dt);
      if (dt > this.newest) {
        this.newest = dt;
        this.newestAt = performance.now();
      }
    }
    this.pending.push(ev);
    if (this.pending.length > MAX_ROWS) this.pending.splice(0, this.pending.length - MAX_ROWS);
    if (this.paused) this.held++;
    else if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush() {
    this.flushTimer = 0;
    if (this.paused || !this.pending.length) return;
    const rows = this.pending.reverse().map((ev) => this.row(ev));
    this.pending = [];
    const empty = this.list.querySelector(".empty");
    if (empty) empty.remove();
    this.list.prepend(...rows);
    while (this.list.children.length > MAX_ROWS) this.list.lastChild.remove();
  }

  row(ev) {
    const domain = ev.meta.domain;
    const d = sizeChange(ev);
    const kind = editorKind(ev);
    const li = h("li", {
      "data-id": ev.meta.id || "",
      "data-type": ev.type || "",
      "data-domain": domain,
      "data-wiki": ev.wiki || "",
      "data-user": ev.user || "",
      "data-kind": kind,
      "data-ns": ev.namespace ?? "",
      "data-delta": d ?? "",
    });
    const title = h("div", { className: "t-title" },
      h("span", { className: `badge ${ev.type}` }, ev.type === "categorize" ? "cat" : ev.type || "?"),
      link(pageURL(domain, ev.title), ev.title || "(no title)", { title: ev.title || "" }));
    const size = h("div", { className: `t-size ${d > 0 ? "plus" : d < 0 ? "minus" : ""}` }, d === null ? "" : signed(d));
    const meta = h("div", { className: "t-meta" },
      shortWiki(domain), " · ",
      ev.user ? link(userURL(domain, ev.user), ev.user) : "(no user)",
      ev.bot ? h("span", { className: "badge bot", style: { marginLeft: "6px" } }, "bot") : null);
    const when = Date.parse(ev.meta.dt);
    const side = h("div", { className: "t-side" },
      h("span", { className: "muted" }, Number.isFinite(when) ? clock(when) : ""), " ",
      link(changeURL(ev), ev.type === "edit" ? "diff" : "view", { "aria-label": `${ev.type === "edit" ? "diff" : "view"}: ${ev.title || ""}` }));
    li.append(title, size, meta, side);
    return li;
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseBtn.setAttribute("aria-pressed", String(this.paused));
    setText(this.pauseBtn, this.paused ? "resume" : "pause");
    this.held = 0;
    if (!this.paused) this.flush();
    this.onState(this.live.state || "connecting", {});
  }

  pausedText() {
    return `paused · ${int(this.held)} new`;
  }

  placeholder() {
    if (!this.list.children.length) this.list.append(h("li", { className: "empty" }, "waiting for edits…"));
  }

  /**
   * showRate shows the matching events per second over the last 10 s of event
   * time (the newest event's time, moved on by the time since it arrived), so
   * that neither a backfill burst nor the browser's clock skews it.
   */
  showRate() {
    const end = this.newest + (performance.now() - this.newestAt);
    this.times = this.times.filter((t) => t > end - 10_000);
    const el = $("#ticker-rate");
    const bad = this.unreadable ? ` · ${int(this.unreadable)} unreadable, skipped` : "";
    setText(el, `${rate(this.times.length / 10)} matching edits/s · ${int(this.received)} received${bad}`);
    el.dataset.received = String(this.received);
    if (this.paused && this.live.state === "live") setText(this.stateEl, this.pausedText());
  }
}
