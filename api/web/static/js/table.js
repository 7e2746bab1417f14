// table.js: every wiki of the window, sortable and filterable, with its share
// and a sparkline of its last hour. Rows are kept per wiki and only their
// changed cells are touched, so a refresh every second keeps focus and scroll.

import { $, $$, h, setText, svg } from "./dom.js";
import { int, percent } from "./format.js";

const SHOWN = 25;

/** WikiTable renders the /stats counts by domain into table#wikis. */
export class WikiTable {
  /** store holds sort and q; open(domain) opens a wiki's detail. */
  constructor(store, open) {
    this.store = store;
    this.open = open;
    this.table = $("#wikis");
    this.tbody = this.table.tBodies[0];
    this.more = $("#wikis-more");
    this.rows = new Map(); // domain -> row
    this.counts = {};
    this.total = 0;
    this.sparks = {};
    this.sparkVersion = 0;
    this.expanded = false;
    this.loaded = false;
    for (const b of $$("th button[data-sort]", this.table)) b.addEventListener("click", () => this.sortBy(b.dataset.sort));
    this.more.addEventListener("click", () => {
      this.expanded = !this.expanded;
      this.render();
    });
  }

  sortBy(col) {
    const cur = this.store.get("sort");
    const curCol = cur.replace(/^-/, "");
    let next;
    if (curCol === col) next = cur.startsWith("-") ? col : `-${col}`;
    else next = col === "domain" ? col : `-${col}`;
    this.store.set({ sort: next });
  }

  /** update takes a /stats body's counts. */
  update(body) {
    this.counts = body.stats || {};
    this.total = body.total || 0;
    this.loaded = true;
    this.render();
  }

  /** setSparks takes a /stats/timeseries body's series by domain. */
  setSparks(groups) {
    this.sparks = groups || {};
    this.sparkVersion++;
    this.render();
  }

  /** sorted lists the domains that pass the filter, in the chosen order. */
  sorted() {
    const q = this.store.get("q").toLowerCase();
    const sort = this.store.get("sort");
    const col = sort.replace(/^-/, "");
    const dir = sort.startsWith("-") ? -1 : 1;
    const list = Object.keys(this.counts).filter((d) => !q || d.toLowerCase().includes(q));
    list.sort((a, b) => {
      if (col !== "domain" && this.counts[a] !== this.counts[b]) return dir * (this.counts[a] - this.counts[b]);
      return (col === "domain" ? dir : 1) * a.localeCompare(b);
    });
    return list;
  }

  render() {
    const sort = this.store.get("sort");
    for (const th of $$("th[aria-sort]", this.table)) {
      const col = th.querySelector("button").dataset.sort;
      th.setAttribute("aria-sort", sort.replace(/^-/, "") === col ? (sort.startsWith("-") ? "descending" : "ascending") : "none");
    }
    const list = this.sorted();
    const shown = this.expanded ? list : list.slice(0, SHOWN);
    setText($("#wikis-count"), this.loaded ? int(Object.keys(this.counts).length) : "");
    const focused = document.activeElement;
    const want = new Set(shown);
    for (const [d, row] of this.rows) {
      if (!want.has(d)) {
        row.tr.remove();
        this.rows.delete(d);
      }
    }
    const max = Math.max(1, ...Object.values(this.counts));
    let prev = null;
    shown.forEach((d, i) => {
      const row = this.rows.get(d) || this.makeRow(d);
      this.fill(row, i + 1, max);
      const next = prev ? prev.nextSibling : this.tbody.firstChild;
      if (next !== row.tr) this.tbody.insertBefore(row.tr, next);
      prev = row.tr;
    });
    const none = this.tbody.querySelector("tr.none");
    if (shown.length === 0 && this.loaded) {
      if (!none) this.tbody.append(h("tr", { className: "none" }, h("td", { colSpan: 5 }, this.store.get("q") ? "no wiki matches the filter" : "no edits in this window")));
    } else if (none) none.remove();
    if (focused && focused !== document.activeElement && focused.isConnected) focused.focus({ preventScroll: true });
    this.more.hidden = list.length <= SHOWN;
    setText(this.more, this.expanded ? "show the top 25 only" : `show all ${int(list.length)} wikis`);
  }

  makeRow(d) {
    const row = {
      tr: h("tr", { "data-domain": d }),
      rank: h("td", { className: "num rank" }),
      count: h("td", { className: "num" }),
      shareText: h("span"),
      bar: h("span"),
      spark: h("td", { className: "spark" }),
      sparkVersion: -1,
    };
    const btn = h("button", { type: "button", title: `${d}: details`, onclick: () => this.open(d) }, d);
    row.tr.append(row.rank, h("td", { className: "domain" }, btn), row.count,
      h("td", { className: "num share" }, row.shareText, h("span", { className: "share-bar" }, row.bar)), row.spark);
    this.rows.set(d, row);
    return row;
  }

  /** fill writes a row's cells; its bar is its count against the largest, max. */
  fill(row, rank, max) {
    const d = row.tr.dataset.domain;
    const n = this.counts[d] || 0;
    const share = this.total ? n / this.total : 0;
    setText(row.rank, String(rank));
    setText(row.count, int(n));
    if (row.tr.dataset.count !== String(n)) row.tr.dataset.count = String(n);
    setText(row.shareText, percent(share));
    const width = `${((n / max) * 100).toFixed(1)}%`;
    if (row.width !== width) row.bar.style.width = row.width = width;
    if (row.sparkVersion !== this.sparkVersion) {
      row.sparkVersion = this.sparkVersion;
      row.spark.replaceChildren(sparkline(this.sparks[d]));
    }
  }
}

/** sparkline draws values as a small line with a filled area (empty for no data). */
export function sparkline(values) {
  const el = svg("svg", { viewBox: "0 0 100 20", preserveAspectRatio: "none", "aria-hidden": "true" });
  if (!values || values.length < 2) return el;
  const max = Math.max(1, ...values);
  const step = 100 / (values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(2)},${(19 - (v / max) * 18).toFixed(2)}`);
  el.append(svg("path", { class: "area", d: `M0,20L${pts.join("L")}L100,20Z` }), svg("path", { d: `M${pts.join("L")}` }));
  return el;
}
