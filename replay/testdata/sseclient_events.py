"""Read COUNT events of an EventStreams feed with sseclient-py, decoding each data.

Usage: sseclient_events.py URL COUNT

Prints one JSON line {"event", "id", "data"} per event, data being the event's
data decoded by Python's json module; exits non-zero when a data is not JSON or
the stream ends before COUNT events.
"""
import json
import sys
import urllib.request

import sseclient


def main():
    url, count = sys.argv[1], int(sys.argv[2])
    headers = {"Accept": "text/event-stream", "User-Agent": "wikiflow-replay-test (sseclient-py)"}
    resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)
    seen = 0
    for ev in sseclient.SSEClient(resp).events():
        try:
            data = json.loads(ev.data)
        except ValueError as e:
            sys.exit("event %d (id %s): data is not JSON: %s: %r" % (seen, ev.id, e, ev.data[:80]))
        print(json.dumps({"event": ev.event, "id": ev.id, "data": data}))
        seen += 1
        if seen == count:
            break
    resp.close()
    if seen != count:
        sys.exit("stream ended after %d of %d events" % (seen, count))


if __name__ == "__main__":
    main()
