// state.js: the view's state and its place in the URL. Everything that changes
// what the page shows (window, chart split, table sort and filter, the open wiki,
// the ticker's filters) lives in the query string, so a copied URL opens the same
// view; values that fail validation fall back to their defaults.

export const DEFAULTS = Object.freeze({
  window: "1h",
  split: "type",
  sort: "-count",
  q: "",
  wiki: "",
  tw: "",
  tns: "",
  ttype: "",
  tkind: "",
  tmin: "",
  tuser: "",
});

const KINDS = ["human", "bot", "registered", "temporary", "anonymous"];
const TYPES = ["edit", "new", "log", "categorize"];

const valid = {
  window: (v) => ["15m", "1h", "24h"].includes(v),
  split: (v) => ["type", "bot", "who"].includes(v),
  sort: (v) => /^-?(domain|count|share)$/.test(v),
  q: (v) => v.length <= 200,
  wiki: (v) => /^[a-z0-9.-]{1,255}$/i.test(v),
  tw: (v) => v.length <= 500,
  tns: (v) => /^-?\d{1,6}$/.test(v),
  ttype: (v) => TYPES.includes(v),
  tkind: (v) => KINDS.includes(v),
  tmin: (v) => /^\d{1,9}$/.test(v),
  tuser: (v) => v.length <= 255,
};

/** read parses a query string into a full state. */
export function read(search) {
  const p = new URLSearchParams(search);
  const s = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) {
    const v = (p.get(k) || "").trim();
    if (v !== "" && valid[k](v)) s[k] = v;
  }
  return s;
}

/** query is the query string of a state: only what differs from the defaults. */
export function query(s) {
  const p = new URLSearchParams();
  for (const k of Object.keys(DEFAULTS)) {
    if (s[k] !== DEFAULTS[k] && s[k] !== "") p.set(k, s[k]);
  }
  const q = p.toString();
  return q ? `?${q}` : "";
}

/**
 * Store holds the state, keeps the URL in step with it and tells listeners
 * which keys changed.
 */
export class Store {
  constructor(search) {
    this.s = read(search);
    this.listeners = [];
    addEventListener("popstate", () => this.replaceAll(read(location.search)));
  }

  get(k) {
    return this.s[k];
  }

  /** on registers fn(changedKeys, state). */
  on(fn) {
    this.listeners.push(fn);
  }

  /**
   * set changes keys. push adds a history entry (opening a wiki, so that Back
   * closes it); otherwise the current entry is replaced.
   */
  set(patch, { push = false } = {}) {
    const next = { ...this.s };
    for (const [k, v] of Object.entries(patch)) {
      const val = v == null ? "" : String(v).trim();
      next[k] = val === "" ? DEFAULTS[k] : valid[k](val) ? val : this.s[k];
    }
    const url = location.pathname + query(next) + location.hash;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
    this.replaceAll(next);
  }

  replaceAll(next) {
    const changed = Object.keys(DEFAULTS).filter((k) => next[k] !== this.s[k]);
    this.s = next;
    if (changed.length) for (const fn of this.listeners) fn(new Set(changed), this.s);
  }
}
