package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/sse"
)

// TestEventStreamSlowClient connects a client that stops reading while the whole
// log is sent: it must be dropped (counter, log line, metric) with a last error
// event after an unbroken run of events, while a client that reads at the same
// time gets every event; resuming from the last id received gives the rest,
// without gap or repeat.
func TestEventStreamSlowClient(t *testing.T) {
	env := newEventEnv(t, func(c *EventsConfig) {
		c.Buffer = minEventBuffer
		c.Stall = 300 * time.Millisecond
	})
	all := evRecorded()
	// Enough bytes to fill the socket buffers: the recording, and copies of it.
	env.publish(t, all...)
	for i := 0; i < 3; i++ {
		env.publish(t, evCopies(all)...)
	}
	url := env.base + eventStreamRoute + "?since=0"

	slow := evDialSlow(t, env.srv.Addr().String())
	if _, err := fmt.Fprintf(slow, "GET %s?since=0 HTTP/1.1\r\nHost: wikiflow\r\nAccept: text/event-stream\r\n\r\n", eventStreamRoute); err != nil {
		t.Fatal(err)
	}
	_, fast := openEvents(t, url)
	got := readEvents(t, fast, len(env.events))
	if len(got) != len(env.events) {
		t.Fatalf("the reading client got %d events of %d", len(got), len(env.events))
	}
	evWait(t, 20*time.Second, "the slow client to be dropped", func() bool { return env.srv.EventStats().DroppedSlow.Load() == 1 })

	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body, 0)
	var msgs []evFrame
	var last evFrame
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		last = evFrame{typ: ev.Type, id: ev.ID, data: ev.Data}
		if ev.Type == "message" {
			msgs = append(msgs, last)
		}
	}
	if len(msgs) == 0 || len(msgs) >= len(env.events) {
		t.Fatalf("the slow client got %d of %d events before the drop", len(msgs), len(env.events))
	}
	t.Logf("the slow client got %d of %d events, then the error event", len(msgs), len(env.events))
	for i, m := range msgs {
		if m.id != evID(env.events[i].seq) {
			t.Fatalf("slow client: event %d has id %s, want %s", i, m.id, evID(env.events[i].seq))
		}
	}
	var body struct{ Error evErrorBody }
	if last.typ != "error" || json.Unmarshal(last.data, &body) != nil || body.Error.Code != codeSlowClient {
		t.Fatalf("last event %q %s, want an error event with code %s", last.typ, last.data, codeSlowClient)
	}
	if !strings.Contains(env.log.String(), "dropping a client that reads too slowly") {
		t.Errorf("no log line about the drop:\n%s", env.log.String())
	}
	_, metrics := fetch(t, env.base+"/metrics")
	if !evMetric(string(metrics), "wikiflow_api_events_clients_dropped_slow_total", "1") {
		t.Errorf("/metrics does not count the drop:\n%s", metrics)
	}

	// Resume after the last event the slow client received.
	resp2, rest := openEvents(t, env.base+eventStreamRoute, "Last-Event-ID", msgs[len(msgs)-1].id)
	if resp2.StatusCode != 200 {
		t.Fatalf("resume: %d", resp2.StatusCode)
	}
	want := env.events[len(msgs):]
	tail := readEvents(t, rest, len(want))
	for i, m := range tail {
		if m.id != evID(want[i].seq) {
			t.Fatalf("resume: event %d has id %s, want %s", i, m.id, evID(want[i].seq))
		}
	}
}

// evDialSlow connects with a 4 KiB receive buffer and never reads until told.
func evDialSlow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// evCopies returns copies of raws with meta.id changed, so that the stream's
// duplicate window keeps them.
func evCopies(raws [][]byte) [][]byte {
	out := make([][]byte, len(raws))
	for i, r := range raws {
		var v map[string]any
		_ = json.Unmarshal(r, &v)
		if m, ok := v["meta"].(map[string]any); ok {
			m["id"] = fmt.Sprintf("%v-copy-%d", m["id"], time.Now().UnixNano())
		}
		out[i], _ = json.Marshal(v)
	}
	return out
}

// evMetric reports whether the exposition text has the sample name
// with the value.
func evMetric(text, name, value string) bool {
	for _, line := range strings.Split(text, "\n") {
		if line == name+" "+value {
			return true
		}
	}
	return false
}
