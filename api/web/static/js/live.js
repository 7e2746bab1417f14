// live.js: a Server-Sent Events connection that comes back by itself.
//
// The browser's EventSource retries some failures on its own and gives up on
// others (an HTTP error, a wrong content type). LiveSource takes both into its
// own hands: on any failure it closes the connection, says so, and opens a new
// one after a growing, jittered delay (minDelay doubling up to maxDelay), so a
// restarted API is found again within maxDelay and a dead one is not hammered.

export class LiveSource {
  /**
   * opts.url() gives the URL to connect to (asked again on every attempt).
   * opts.events lists the event types to listen to; opts.onEvent(type, event)
   * receives them. opts.onState(state, info) hears "connecting", "live",
   * "reconnecting" (info.retryAt, info.attempt, info.since) and "error"
   * (an error event sent by the server, info.message; the stream stays open).
   */
  constructor(opts) {
    this.opts = { minDelay: 500, maxDelay: 5000, ...opts };
    this.es = null;
    this.timer = 0;
    this.attempt = 0;
    this.downSince = 0;
    this.state = "";
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
  }

  /** restart reconnects at once (the URL changed). */
  restart() {
    this.stop();
    this.attempt = 0;
    this.start();
  }

  setState(state, info = {}) {
    this.state = state;
    if (this.opts.onState) this.opts.onState(state, info);
  }

  connect() {
    if (this.stopped) return;
    const es = new EventSource(this.opts.url());
    this.es = es;
    if (this.attempt === 0) this.setState("connecting");
    es.addEventListener("open", () => {
      if (es !== this.es) return;
      this.attempt = 0;
      this.downSince = 0;
      this.setState("live");
    });
    for (const type of this.opts.events) {
      es.addEventListener(type, (ev) => {
        if (es === this.es) this.opts.onEvent(type, ev);
      });
    }
    es.addEventListener("error", (ev) => {
      if (es !== this.es) return;
      if (typeof ev.data === "string" && ev.data !== "") {
        this.setState("error", { message: errorMessage(ev.data) });
        return;
      }
      this.fail();
    });
  }

  fail() {
    this.es.close();
    this.es = null;
    this.attempt++;
    if (!this.downSince) this.downSince = Date.now();
    const base = Math.min(this.opts.maxDelay, this.opts.minDelay * 2 ** (this.attempt - 1));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.setState("reconnecting", { attempt: this.attempt, retryAt: Date.now() + delay, since: this.downSince });
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

/** errorMessage reads the message of an error event's data (the API's error body, or text). */
function errorMessage(data) {
  try {
    const v = JSON.parse(data);
    if (v && v.error && v.error.message) return v.error.message;
    if (v && v.message) return v.message;
  } catch {
    /* not JSON: the text is the message */
  }
  return data.slice(0, 200);
}
