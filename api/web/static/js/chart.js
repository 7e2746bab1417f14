// chart.js: a stacked bar chart of a series with uPlot (canvas), its legend
// showing the window's totals, or one bucket's values under the cursor. The
// chart element's data-points, data-sum and data-series (JSON: times, total,
// groups) say what it draws.

import uPlot from "../vendor/uplot.js";
import { h, setText } from "./dom.js";
import { int, hhmm } from "./format.js";
import { groupOrder, sum } from "./series.js";
import { themeName, onThemeChange } from "./theme.js";

const LABELS = { new: "new page", human: "humans", bot: "bots" };
const FALLBACK = ["--c-edit", "--c-new", "--c-log", "--c-categorize", "--c-other", "--c-external"];
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function colorOf(group, i) {
  return cssVar(`--c-${group}`) || cssVar(FALLBACK[i % FALLBACK.length]);
}

/** StackChart draws series into el and their legend into legendEl. */
export class StackChart {
  constructor(el, legendEl) {
    this.el = el;
    this.legendEl = legendEl;
    this.u = null;
    this.key = "";
    new ResizeObserver(() => this.resize()).observe(el);
    onThemeChange(() => this.s && this.show(this.s, this.split, true));
  }

  resize() {
    if (this.u && this.el.clientWidth > 0) this.u.setSize({ width: this.el.clientWidth, height: this.el.clientHeight });
  }

  /** message shows a line of text instead of the chart (no data, an API error). */
  message(text) {
    let m = this.el.querySelector(".msg");
    if (!text) {
      if (m) m.remove();
      return;
    }
    if (!m) m = this.el.appendChild(h("div", { className: "msg" }));
    setText(m, text);
  }

  /** show draws s, grouped as split says (the groups' colours and order). */
  show(s, split, rebuild = false) {
    this.s = s;
    this.split = split;
    this.order = groupOrder(s, split);
    const data = this.data(s);
    const key = `${this.order.join(",")}|${s.step}|${themeName()}`;
    if (!this.u || key !== this.key || rebuild) {
      if (this.u) this.u.destroy();
      this.key = key;
      this.u = new uPlot(this.options(s), data, this.el);
    } else {
      this.u.setData(data);
    }
    this.el.dataset.points = String(s.times.length);
    this.el.dataset.nonzero = String(s.total.filter((v) => v > 0).length);
    this.el.dataset.sum = String(sum(s.total));
    this.el.dataset.series = JSON.stringify({ times: s.times, total: s.total, groups: s.groups });
    this.message(s.times.length === 0 ? "no events in this window yet" : "");
    this.legend(null);
  }

  /** data stacks the groups: uPlot series 1 is the top of the stack, drawn first. */
  data(s) {
    const xs = s.times.map((t) => t + s.step / 2);
    const groups = this.order.length ? this.order : ["total"];
    const cols = groups.map((g) => (g === "total" ? s.total : s.groups[g]));
    const stacked = [];
    let acc = new Array(xs.length).fill(0);
    for (const col of cols) {
      acc = acc.map((v, i) => v + col[i]);
      stacked.push(acc);
    }
    return [xs, ...stacked.reverse()];
  }

  options(s) {
    const groups = this.order.length ? this.order : ["total"];
    const muted = cssVar("--muted");
    const grid = cssVar("--border");
    const font = `12px ${getComputedStyle(document.body).fontFamily}`;
    const bars = uPlot.paths.bars({ size: [0.84, 64], gap: 1 });
    const series = [{}];
    for (let i = groups.length - 1; i >= 0; i--) {
      const c = groups[i] === "total" ? cssVar("--accent") : colorOf(groups[i], i);
      series.push({ label: groups[i], stroke: c, fill: c, width: 0, paths: bars, points: { show: false } });
    }
    const end = s.times.length ? s.times[s.times.length - 1] + s.step : 1;
    const start = s.times.length ? s.times[0] : 0;
    return {
      width: this.el.clientWidth || 600,
      height: this.el.clientHeight || 240,
      padding: [10, 6, 0, 0],
      legend: { show: false },
      cursor: { points: { show: false }, drag: { x: false, y: false }, y: false },
      scales: {
        x: { time: true, range: () => [start, end] },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {
          stroke: muted, font, grid: { show: false }, ticks: { stroke: grid, width: 1, size: 4 }, space: 64,
          values: (u, splits) => splits.map((v) => hhmm(v * 1000)),
        },
        {
          stroke: muted, font, size: 46, space: 36,
          grid: { stroke: grid, width: 1 }, ticks: { show: false },
          values: (u, vals) => vals.map((v) => compact.format(v)),
        },
      ],
      series,
      hooks: { setCursor: [(u) => this.legend(u.cursor.idx)] },
    };
  }

  /** legend lists each group with its total, or with its value in bucket idx. */
  legend(idx) {
    const s = this.s;
    const groups = this.order.length ? this.order : [];
    const at = idx != null && idx >= 0 && idx < s.times.length;
    const items = groups.map((g, i) =>
      h("span", { className: "item", "data-group": g },
        h("span", { className: "sw", style: { background: colorOf(g, i) } }),
        LABELS[g] || g, " ", h("b", {}, int(at ? s.groups[g][idx] : sum(s.groups[g])))));
    const label = at
      ? `${hhmm(s.times[idx] * 1000)}: ${int(s.total[idx])}`
      : `total ${int(sum(s.total))}`;
    items.push(h("span", { className: "at" }, label));
    this.legendEl.replaceChildren(...items);
  }
}
