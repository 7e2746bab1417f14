"""Read an EventStreams feed with sseclient-py and print each event as one JSON line.

Usage: sseclient_read.py URL COUNT [LAST_EVENT_ID]

Reads COUNT events (of any type) from URL, sending LAST_EVENT_ID as the
Last-Event-ID header when given, and prints {"event", "id", "data"} per event.
"""
import json
import sys
import urllib.request

import sseclient


def main():
    url, count = sys.argv[1], int(sys.argv[2])
    headers = {"Accept": "text/event-stream", "User-Agent": "wikiflow-emulator-test (sseclient-py)"}
    if len(sys.argv) > 3:
        headers["Last-Event-ID"] = sys.argv[3]
    resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)
    client = sseclient.SSEClient(resp)
    seen = 0
    for ev in client.events():
        print(json.dumps({"event": ev.event, "id": ev.id, "data": ev.data}))
        seen += 1
        if seen == count:
            break
    resp.close()
    if seen != count:
        sys.exit("stream ended after %d of %d events" % (seen, count))


if __name__ == "__main__":
    main()
