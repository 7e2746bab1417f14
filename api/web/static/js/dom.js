// dom.js: building elements without markup strings, so that text from the feed
// is only ever text.

/**
 * h creates an element. attrs: properties (className, textContent, href, …),
 * "data-*" and "aria-*" attributes, "on*" listeners and style (an object of
 * style properties, set through the CSSOM as the page's CSP requires). Children are nodes or
 * strings (added as text); null and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style") Object.assign(el.style, v);
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "title") el.setAttribute(k, String(v));
    else el[k] = v;
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** link is an external link to a wiki, or plain text when there is no safe URL. */
export function link(url, text, attrs = {}) {
  if (!url) return h("span", attrs, text);
  return h("a", { href: url, rel: "noreferrer", target: "_blank", ...attrs }, text);
}

/** setText changes an element's text only when it differs (no needless layout). */
export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

/** $ returns the first element matching selector under root. */
export const $ = (sel, root = document) => root.querySelector(sel);

/** $$ returns every element matching selector under root, as an array. */
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const SVG = "http://www.w3.org/2000/svg";

/** svg creates an SVG element with the given attributes. */
export function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}
