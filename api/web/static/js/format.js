// format.js: how numbers, times, editors and wiki links look on the page.

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const oneDigit = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

/** int formats a count: 12,345. */
export const int = (n) => whole.format(Math.round(n));

/** rate formats a rate with one decimal below 100 (2.4, 87.0, 1,204). */
export const rate = (n) => (Math.abs(n) >= 100 ? whole.format(Math.round(n)) : oneDigit.format(n));

/** percent formats a fraction 0..1 as a percentage with one decimal. */
export const percent = (f) => `${oneDigit.format(f * 100)}%`;

/** signed formats a size change in bytes: +1,204, −37, 0. */
export function signed(n) {
  if (n > 0) return `+${int(n)}`;
  if (n < 0) return `\u2212${int(-n)}`;
  return "0";
}

/** age formats a duration in seconds for people: 0.4 s, 12 s, 3 min, 2 h. */
export function age(s) {
  if (s == null || !Number.isFinite(s)) return "–";
  if (s < 10) return `${oneDigit.format(s)} s`;
  if (s < 90) return `${whole.format(s)} s`;
  if (s < 5400) return `${whole.format(s / 60)} min`;
  if (s < 172800) return `${whole.format(s / 3600)} h`;
  return `${whole.format(s / 86400)} days`;
}

/** clock formats a time as local HH:MM:SS. */
export const clock = (ms) => clockFmt.format(new Date(ms));

/** WINDOWS are the page's windows: label text and chart step. */
export const WINDOWS = {
  "15m": { text: "last 15 minutes", short: "15 min", minutes: 15, step: 60 },
  "1h": { text: "last hour", short: "1 h", minutes: 60, step: 60 },
  "24h": { text: "last 24 hours", short: "24 h", minutes: 1440, step: 3600 },
};

const hhmmFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });

/** hhmm formats a time as local HH:MM. */
export const hhmm = (ms) => hhmmFmt.format(new Date(ms));

/** shortWiki drops the ".org" of a Wikimedia domain: en.wikipedia, commons.wikimedia. */
export function shortWiki(domain) {
  return String(domain || "").replace(/\.org$/, "").replace(/^www\./, "");
}

const DOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i;

/** wikiBase is https://<domain>, or null when domain is not a plain host name. */
export function wikiBase(domain) {
  return DOMAIN.test(domain || "") ? `https://${domain}` : null;
}

/** pagePath is a MediaWiki title as a /wiki/ path segment. */
function pagePath(title) {
  return encodeURIComponent(String(title).replace(/ /g, "_")).replace(/%3A/gi, ":").replace(/%2F/gi, "/");
}

/** pageURL links to a page of a wiki. */
export function pageURL(domain, title) {
  const base = wikiBase(domain);
  return base && title ? `${base}/wiki/${pagePath(title)}` : null;
}

/** userURL links to a user's contributions on a wiki (works for IPs and temporary accounts too). */
export function userURL(domain, user) {
  const base = wikiBase(domain);
  return base && user ? `${base}/wiki/Special:Contributions/${pagePath(user)}` : null;
}

/**
 * changeURL links to what a recentchange event changed: the diff of an edit,
 * the first revision of a new page, the log entry's page otherwise.
 */
export function changeURL(ev) {
  const domain = ev.meta && ev.meta.domain;
  const base = wikiBase(domain);
  if (!base) return null;
  const rev = ev.revision || {};
  const idx = `${base}/w/index.php`;
  if (ev.type === "edit" && Number.isInteger(rev.new) && Number.isInteger(rev.old)) return `${idx}?diff=${rev.new}&oldid=${rev.old}`;
  if (ev.type === "new" && Number.isInteger(rev.new)) return `${idx}?oldid=${rev.new}`;
  if (ev.type === "log" && ev.log_type) return `${base}/wiki/Special:Log/${encodeURIComponent(ev.log_type)}`;
  return pageURL(domain, ev.title);
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-f]*:[0-9a-f:.]*$/i;

/**
 * editorKind classifies an event's editor as the page shows it: bot (flagged),
 * temporary (a "~" account), anonymous (an IP address or no name) or registered.
 * Apart from bot it follows internal/event's EditorKind, which the API counts.
 */
export function editorKind(ev) {
  if (ev.bot) return "bot";
  const u = ev.user || "";
  if (u === "") return "anonymous";
  if (u.startsWith("~")) return "temporary";
  if (IPV4.test(u) || (u.includes(":") && IPV6.test(u))) return "anonymous";
  return "registered";
}

/** sizeChange is the change in page size of an event, or null when it carries no length. */
export function sizeChange(ev) {
  const l = ev.length;
  if (!l || typeof l.new !== "number") return null;
  return l.new - (typeof l.old === "number" ? l.old : 0);
}
