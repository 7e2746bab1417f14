"""Reads wikiflow's /v2/stream/recentchange with sseclient-py, an EventStreams
client written independently of wikiflow, as the Go tests direct.

argv[1] is a JSON list of jobs: {"url", "headers" (optional), "max" (stop after
this many message events, optional), "idle" (seconds of silence that end the
job)}. For every event it prints one JSON line {"job", "event", "id", "data",
"meta_id"} (meta_id read from data with Python's json), and per job a last line
{"job", "end"} saying why the job ended.
"""

import json
import sys

import sseclient
import urllib3


def run(index, job, http):
    headers = {"Accept": "text/event-stream"}
    headers.update(job.get("headers", {}))
    resp = http.request(
        "GET",
        job["url"],
        headers=headers,
        preload_content=False,
        retries=False,
        timeout=urllib3.Timeout(connect=5, read=job.get("idle", 2)),
    )
    if resp.status != 200:
        print(json.dumps({"job": index, "end": "status %d: %s" % (resp.status, resp.data.decode())}))
        return
    messages = 0
    end = "eof"
    try:
        for ev in sseclient.SSEClient(resp).events():
            out = {"job": index, "event": ev.event, "id": ev.id, "data": ev.data}
            if ev.event == "message":
                out["meta_id"] = json.loads(ev.data)["meta"]["id"]
                messages += 1
            print(json.dumps(out))
            if job.get("max") and messages >= job["max"]:
                end = "max"
                break
    except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError) as e:
        end = "idle" if "timed out" in str(e) else "error: %s" % e
    finally:
        resp.close()
    print(json.dumps({"job": index, "end": end}))


def main():
    http = urllib3.PoolManager()
    for i, job in enumerate(json.loads(sys.argv[1])):
        run(i, job, http)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
