// main.js: the dashboard. One /stats/stream connection carries the window's
// figures (headline, wikis table); each of its pushes also asks, no more often
// than their own pace, for the last five minutes of the series (merged into the
// chart loaded whole from /stats/timeseries), the top lists and the sparklines.
// The ticker has its own connection to /v2/stream/recentchange.

import { $, $$, h, setText } from "./dom.js";
import { get, Refresher, url } from "./api.js";
import { LiveSource } from "./live.js";
import { Store } from "./state.js";
import { WINDOWS, clock } from "./format.js";
import { fromBody, merge, rebin, sum } from "./series.js";
import { StackChart } from "./chart.js";
import { Headline } from "./headline.js";
import { WikiTable } from "./table.js";
import { fromNote, renderEditors, renderPages } from "./top.js";
import { Ticker } from "./ticker.js";
import { Detail } from "./detail.js";
import { cycle, initTheme } from "./theme.js";

const store = new Store(location.search);
initTheme($("#theme"));
const headline = new Headline();
const chart = new StackChart($("#chart"), $("#legend"));
const table = new WikiTable(store, (d) => store.set({ wiki: d }, { push: true }));
const detail = new Detail(store);
const ticker = new Ticker(store);

// The first full render: every part has shown data once.
const parts = new Set(["stats", "chart", "rate", "pages", "editors", "sparks"]);
document.documentElement.dataset.pending = [...parts].join(" ");
function done(part) {
  if (!parts.delete(part)) return;
  document.documentElement.dataset.pending = [...parts].join(" ");
  if (parts.size) return;
  performance.mark("wikiflow:ready");
  document.documentElement.dataset.ready = "1";
}

// The chart: a per-minute series of the window, drawn per minute or per hour.
let base = null;
let view = 0; // bumped when window or split change, so late answers are dropped

const fullChart = new Refresher(async () => {
  const v = view;
  const body = await get("/stats/timeseries", { window: store.get("window"), by: store.get("split") }).catch(chartError);
  if (!body || v !== view) return;
  base = fromBody(body);
  draw();
  done("chart");
  liveChart.kick(true);
}, 0);

const liveChart = new Refresher(async () => {
  if (!base) return;
  const v = view;
  const body = await get("/stats/timeseries", { window: "5m", by: store.get("split") }).catch(chartError);
  if (!body || v !== view) return;
  const recent = fromBody(body);
  headline.rate(sum(recent.total) / 5);
  done("rate");
  if (merge(base, recent)) draw();
  else fullChart.kick(true);
}, 2000);

function chartError(err) {
  chart.message(`the series could not be read: ${err.message}`);
  return null;
}

function draw() {
  chart.show(rebin(base, WINDOWS[store.get("window")].step), store.get("split"));
}

// Top lists and sparklines.
const tops = new Refresher(async () => {
  const v = view;
  const p = { window: store.get("window"), top: 10 };
  const [pages, editors] = await Promise.all([get("/stats/top/pages", p), get("/stats/top/editors", p)]);
  if (v !== view) return;
  renderPages($("#top-pages"), pages);
  renderEditors($("#top-editors"), $("#unique-editors"), editors);
  setText($("[data-top-from]"), fromNote(pages));
  done("pages");
  done("editors");
}, 10_000);

const sparks = new Refresher(async () => {
  const body = await get("/stats/timeseries", { window: "1h", by: "domain", top: 1000 });
  table.setSparks(body.series);
  done("sparks");
}, 30_000);

// The figures, live.
let known = 0;
function onStats(ev) {
  const body = JSON.parse(ev.data);
  headline.stats(body);
  table.update(body);
  detail.setAllTotal(body.total);
  const wikis = Object.keys(body.stats || {});
  if (wikis.length !== known) {
    known = wikis.length;
    $("#known-wikis").replaceChildren(...wikis.sort().map((d) => h("option", { value: d })));
  }
  done("stats");
  liveChart.kick();
  tops.kick();
  sparks.kick();
}

const conn = $("#conn");
let retry = null;
let wasDown = false;
function onState(state, info) {
  conn.dataset.state = state;
  retry = state === "reconnecting" ? info : null;
  if (state === "live" && wasDown) {
    wasDown = false;
    fullChart.kick(true);
    tops.kick(true);
    sparks.kick(true);
  }
  if (state === "reconnecting") wasDown = true;
  showConn(state === "error" ? `API error: ${info.message}` : null);
}

function showConn(text) {
  const label = conn.querySelector(".conn-label");
  if (text) return setText(label, text);
  switch (conn.dataset.state) {
    case "live":
      return setText(label, "live");
    case "reconnecting": {
      const s = Math.max(0, Math.ceil((retry.retryAt - Date.now()) / 1000));
      return setText(label, `disconnected since ${clock(retry.since)} · retrying${s ? ` in ${s} s` : "…"}`);
    }
    case "error":
      return null;
    default:
      return setText(label, "connecting…");
  }
}
setInterval(() => conn.dataset.state === "reconnecting" && showConn(), 1000);

const stream = new LiveSource({
  url: () => url("/stats/stream", { window: store.get("window"), by: "domain" }),
  events: ["stats"],
  onEvent: (_, ev) => onStats(ev),
  onState,
});

// Controls.
function showControls() {
  const w = store.get("window");
  for (const b of $$("#window button")) b.setAttribute("aria-pressed", String(b.dataset.window === w));
  for (const b of $$("#split button")) b.setAttribute("aria-pressed", String(b.dataset.split === store.get("split")));
  for (const el of $$("[data-window-text]")) setText(el, WINDOWS[w].text);
  for (const el of $$("[data-window-short]")) setText(el, WINDOWS[w].short);
  setText($("[data-step-text]"), WINDOWS[w].step === 3600 ? "hour" : "minute");
  const q = $("#wiki-filter");
  if (document.activeElement !== q) q.value = store.get("q");
}

for (const b of $$("#window button")) b.addEventListener("click", () => store.set({ window: b.dataset.window }));
for (const b of $$("#split button")) b.addEventListener("click", () => store.set({ split: b.dataset.split }));
$("#wiki-filter").addEventListener("input", (e) => store.set({ q: e.target.value }));

store.on((changed) => {
  showControls();
  if (changed.has("window") || changed.has("split")) {
    view++;
    base = null;
    fullChart.kick(true);
  }
  if (changed.has("window")) {
    stream.restart();
    tops.kick(true);
  }
  if (changed.has("sort") || changed.has("q")) table.render();
  if (changed.has("wiki") || (changed.has("window") && store.get("wiki"))) detail.sync();
});

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName);
  if (typing) {
    if (e.key === "Escape" && e.target.id === "wiki-filter") e.target.blur();
    return;
  }
  if (e.key === "/") {
    e.preventDefault();
    $("#wiki-filter").focus();
  } else if (e.key === "p") {
    ticker.togglePause();
  } else if (e.key === "t") {
    cycle();
  }
});

// A page kept in the back/forward cache must not hold its connections: the
// browser allows only a few per server, and they would starve the next page.
addEventListener("pagehide", () => {
  stream.stop();
  ticker.stop();
});
addEventListener("pageshow", (e) => {
  if (!e.persisted) return;
  stream.start();
  ticker.start();
  fullChart.kick(true);
});

showControls();
fullChart.kick(true);
stream.start();
ticker.start();
detail.sync();
