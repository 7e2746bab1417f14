"""Read an EventStreams feed with sseclient-py and print each event as one JSON line.

Usage: sseclient_read.py [--json-data] URL COUNT [LAST_EVENT_ID]

Reads COUNT events (of any type) from URL, sending LAST_EVENT_ID as the
Last-Event-ID header when given, and prints {"event", "id", "data"} per event.
With --json-data, data is the event's data decoded by Python's json module, and
a data that is not JSON ends the script with an error. Exits non-zero when the
stream ends before COUNT events.
"""
import json
import sys
import urllib.request

import sseclient


def main():
    args = sys.argv[1:]
    decode = bool(args) and args[0] == "--json-data"
    if decode:
        args = args[1:]
    url, count = args[0], int(args[1])
    headers = {"Accept": "text/event-stream", "User-Agent": "wikiflow-test (sseclient-py)"}
    if len(args) > 2:
        headers["Last-Event-ID"] = args[2]
    resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)
    seen = 0
    for ev in sseclient.SSEClient(resp).events():
        data = ev.data
        if decode:
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
