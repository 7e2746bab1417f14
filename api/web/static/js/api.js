// api.js: reading the API of the server that served the page.

/** APIError is an answer of the API that was not 2xx, with its error body's message. */
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** url builds a same-origin URL with the given parameters (empty ones left out). */
export function url(path, params = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") p.set(k, String(v));
  const q = p.toString();
  return q ? `${path}?${q}` : path;
}

/**
 * get fetches a JSON document. The browser revalidates with the ETag the API
 * sends, so an unchanged answer costs a 304. signal aborts it.
 */
export async function get(path, params, signal) {
  let res;
  try {
    res = await fetch(url(path, params), { headers: { Accept: "application/json" }, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new APIError(0, `the API is unreachable (${err.message})`);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : `${res.status} ${res.statusText}`;
    throw new APIError(res.status, msg);
  }
  return body;
}

/**
 * Refresher runs an async job at most once at a time and no more often than
 * every minGap ms; calls in between are folded into one run after the gap.
 */
export class Refresher {
  constructor(job, minGap) {
    this.job = job;
    this.minGap = minGap;
    this.last = -Infinity;
    this.running = false;
    this.again = false;
    this.timer = 0;
  }

  /** kick asks for a run; now skips the gap (a changed view). */
  kick(now = false) {
    if (now) {
      clearTimeout(this.timer);
      this.timer = 0;
      this.last = -Infinity;
    }
    if (this.running) {
      this.again = true;
      return;
    }
    const wait = this.last + this.minGap - performance.now();
    if (wait > 0) {
      if (!this.timer) this.timer = setTimeout(() => ((this.timer = 0), this.kick()), wait);
      return;
    }
    this.run();
  }

  async run() {
    this.running = true;
    this.again = false;
    this.last = performance.now();
    try {
      await this.job();
    } catch (err) {
      if (err.name !== "AbortError") console.warn("refresh:", err);
    } finally {
      this.running = false;
      if (this.again) this.kick();
    }
  }
}
