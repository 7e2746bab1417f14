// detail.js: one wiki's view in a dialog: its figures, its series by type, its
// top pages and top editors, refreshed while it is open.

import { $, setText } from "./dom.js";
import { get, Refresher } from "./api.js";
import { int, percent, rate, wikiBase, WINDOWS } from "./format.js";
import { fromBody, rebin } from "./series.js";
import { StackChart } from "./chart.js";
import { renderEditors, renderPages } from "./top.js";

const REFRESH_MS = 10_000;

/** Detail shows store.wiki in dialog#detail; closing it clears store.wiki. */
export class Detail {
  constructor(store) {
    this.store = store;
    this.dialog = $("#detail");
    this.chart = null;
    this.allTotal = 0;
    this.refresher = new Refresher(() => this.load(), REFRESH_MS);
    $("#detail-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      if (this.store.get("wiki")) this.store.set({ wiki: "" });
    });
    this.dialog.addEventListener("click", (e) => {
      if (e.target === this.dialog) this.dialog.close();
    });
    setInterval(() => this.dialog.open && this.refresher.kick(), REFRESH_MS);
  }

  /** sync opens, refreshes or closes the dialog as the state says. */
  sync() {
    const d = this.store.get("wiki");
    if (!d) {
      if (this.dialog.open) this.dialog.close();
      return;
    }
    setText($("#detail-title"), d);
    const link = $("#detail-link");
    link.href = wikiBase(d) || "#";
    if (!this.dialog.open) this.dialog.showModal();
    if (!this.chart) this.chart = new StackChart($("#detail-chart"), $("#detail-legend"));
    this.refresher.kick(true);
  }

  /** setAllTotal is the window's total of every wiki, for the share. */
  setAllTotal(n) {
    this.allTotal = n;
  }

  async load() {
    const domain = this.store.get("wiki");
    if (!domain) return;
    const window = this.store.get("window");
    const p = { window, domain };
    const [stats, series, pages, editors] = await Promise.all([
      get("/stats", { ...p, by: "type" }),
      get("/stats/timeseries", { ...p, by: "type" }),
      get("/stats/top/pages", p),
      get("/stats/top/editors", p),
    ]);
    if (domain !== this.store.get("wiki") || window !== this.store.get("window")) return;
    this.put("total", int(stats.total), stats.total);
    this.put("epm", rate(stats.edits_per_minute || 0), stats.edits_per_minute);
    this.put("bot_share", percent(stats.bot_share || 0), stats.bot_share);
    this.put("share", this.allTotal ? percent(stats.total / this.allTotal) : "–");
    this.chart.show(rebin(fromBody(series), WINDOWS[window].step), "type");
    renderPages($("#detail-pages"), pages, false);
    renderEditors($("#detail-editors"), null, editors, false);
  }

  put(name, text, value) {
    const el = $(`[data-detail="${name}"]`);
    setText(el, text);
    if (value !== undefined) el.dataset.value = String(value);
  }
}
