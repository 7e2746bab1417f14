// series.js: time series as the page keeps them. A series is
// { step, times: [unix seconds of each bucket's start], total: [...],
//   groups: { name: [...] } }, oldest first, one value per bucket.

/** fromBody turns a /stats/timeseries body into a series. */
export function fromBody(body) {
  const times = (body.times || []).map((t) => Date.parse(t) / 1000);
  const groups = {};
  for (const [k, v] of Object.entries(body.series || {})) groups[k] = v.slice();
  return { step: body.step_seconds || 60, times, total: (body.total || []).slice(), groups, asOf: body.as_of };
}

/**
 * merge writes a newer, shorter series (the last minutes, fetched again) into
 * base: buckets both have are replaced (late events change recent minutes),
 * newer ones are appended with any minutes between them as zeros, and the
 * oldest buckets are dropped so that base keeps its length. It returns false
 * when the two cannot be joined (base is empty, or the gap is longer than base),
 * in which case base should be fetched whole again.
 */
export function merge(base, upd) {
  const n = base.times.length;
  if (n === 0 || upd.times.length === 0 || upd.step !== base.step) return upd.times.length === 0;
  const step = base.step;
  const lastNew = upd.times[upd.times.length - 1];
  if ((lastNew - base.times[n - 1]) / step >= n) return false;
  const names = new Set([...Object.keys(base.groups), ...Object.keys(upd.groups)]);
  for (const g of names) if (!base.groups[g]) base.groups[g] = new Array(n).fill(0);
  for (let t = base.times[n - 1] + step; t <= lastNew; t += step) {
    base.times.push(t);
    base.total.push(0);
    for (const g of names) base.groups[g].push(0);
  }
  const first = base.times[0];
  for (let j = 0; j < upd.times.length; j++) {
    const i = Math.round((upd.times[j] - first) / step);
    if (i < 0 || i >= base.times.length) continue;
    base.total[i] = upd.total[j];
    for (const g of names) base.groups[g][i] = upd.groups[g] ? upd.groups[g][j] : 0;
  }
  const drop = base.times.length - n;
  if (drop > 0) {
    base.times.splice(0, drop);
    base.total.splice(0, drop);
    for (const g of names) base.groups[g].splice(0, drop);
  }
  for (const g of names) if (!base.groups[g].some((v) => v !== 0)) delete base.groups[g];
  if (upd.asOf) base.asOf = upd.asOf;
  return true;
}

/** rebin sums a series into buckets of step seconds (aligned to the epoch: whole UTC hours for 3600). */
export function rebin(s, step) {
  if (step === s.step) return s;
  const out = { step, times: [], total: [], groups: {}, asOf: s.asOf };
  const names = Object.keys(s.groups);
  for (const g of names) out.groups[g] = [];
  let last = null;
  for (let i = 0; i < s.times.length; i++) {
    const b = Math.floor(s.times[i] / step) * step;
    if (b !== last) {
      out.times.push(b);
      out.total.push(0);
      for (const g of names) out.groups[g].push(0);
      last = b;
    }
    const k = out.times.length - 1;
    out.total[k] += s.total[i];
    for (const g of names) out.groups[g][k] += s.groups[g][i];
  }
  return out;
}

/** sum adds up an array of numbers. */
export const sum = (a) => a.reduce((x, y) => x + y, 0);

const ORDER = {
  type: ["edit", "new", "log", "categorize", "external"],
  bot: ["human", "bot"],
  who: ["registered", "temporary", "anonymous", "bot"],
};

/** groupOrder lists a series' groups bottom of the stack first: the known order of the split, then the rest by size. */
export function groupOrder(s, split) {
  const known = ORDER[split] || [];
  const names = Object.keys(s.groups);
  const rest = names.filter((g) => !known.includes(g)).sort((a, b) => sum(s.groups[b]) - sum(s.groups[a]));
  return [...known.filter((g) => names.includes(g)), ...rest];
}
