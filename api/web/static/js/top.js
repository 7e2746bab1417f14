// top.js: the most changed pages and the most active editors, each linked to
// its wiki.

import { h, link } from "./dom.js";
import { int, pageURL, userURL, shortWiki, hhmm } from "./format.js";

function row(what, where, n, max) {
  const bg = h("span", { className: "bg", style: { width: `${((n / max) * 100).toFixed(1)}%` } });
  return h("li", { "data-count": n }, bg, h("span", { className: "what" }, what, where), h("span", { className: "n" }, int(n)));
}

function empty(ol, text) {
  ol.replaceChildren(h("li", { className: "empty" }, text));
}

/**
 * renderPages fills ol with a /stats/top/pages body. withWiki shows each page's
 * wiki (off in a wiki's own detail).
 */
export function renderPages(ol, body, withWiki = true) {
  const items = body.items || [];
  if (!items.length) return empty(ol, "no page changed in this window");
  const max = Math.max(1, ...items.map((i) => i.count));
  ol.replaceChildren(...items.map((it) => {
    const where = withWiki ? h("span", { className: "where" }, shortWiki(it.domain)) : null;
    const a = link(pageURL(it.domain, it.title), it.title, { title: `${it.title} on ${it.domain}` });
    const li = row(a, where, it.count, max);
    li.dataset.domain = it.domain;
    li.dataset.title = it.title;
    return li;
  }));
}

/**
 * renderEditors fills ol with a /stats/top/editors body, and note (when given)
 * with its estimate of distinct editors, which covers every wiki.
 */
export function renderEditors(ol, note, body, withWiki = true) {
  const items = body.items || [];
  if (note) note.textContent = body.unique_editors != null ? `≈ ${int(body.unique_editors)} editors` : "";
  if (!items.length) return empty(ol, "no editor in this window");
  const max = Math.max(1, ...items.map((i) => i.count));
  ol.replaceChildren(...items.map((it) => {
    const where = withWiki ? h("span", { className: "where" }, shortWiki(it.domain)) : null;
    const a = link(userURL(it.domain, it.user), it.user, { title: `${it.user}'s contributions on ${it.domain}` });
    const li = row(a, where, it.count, max);
    li.dataset.domain = it.domain;
    li.dataset.user = it.user;
    return li;
  }));
}

/** fromNote says where a top list starts, when it starts later than the window (24 h lists). */
export function fromNote(body) {
  return body.from ? `since ${hhmm(Date.parse(body.from))}` : "";
}
