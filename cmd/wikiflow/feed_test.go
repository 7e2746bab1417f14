package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wikiflow/wikiflow/internal/recording"
)

// feedEvent is one event of testFeed, described independently of wikiflow's
// decoder (encoding/json on the recorded bytes).
type feedEvent struct {
	id     string // the SSE id sent with it, in Wikimedia's layout
	data   []byte // the recorded bytes, sent as one data: line
	metaID string
	wiki   string // the wiki field, or meta.domain when it has none
	canary bool
}

// recordedFeed returns the bundled recording as feed events with positions
// offset+0, offset+1, … in Wikimedia's id layout.
func recordedFeed(t *testing.T, offset int) []feedEvent {
	t.Helper()
	var out []feedEvent
	for i, ev := range recording.Events() {
		var v struct {
			Wiki string `json:"wiki"`
			Meta struct {
				ID     string `json:"id"`
				Domain string `json:"domain"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			t.Fatalf("recording line %d: %v", ev.Line, err)
		}
		wiki := v.Wiki
		if wiki == "" {
			wiki = v.Meta.Domain
		}
		out = append(out, feedEvent{
			id: fmt.Sprintf(`[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":%d},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]`,
				offset+i),
			data: ev.Data, metaID: v.Meta.ID, wiki: wiki, canary: v.Meta.Domain == "canary",
		})
	}
	return out
}

// serveFeed serves events as an EventStreams-like SSE stream: ":ok", then every
// event after the one named by Last-Event-ID (all of them without it), then it
// holds the connection open until the client leaves.
func serveFeed(t *testing.T, events []feedEvent) *httptest.Server {
	t.Helper()
	index := map[string]int{}
	for i, e := range events {
		index[e.id] = i + 1
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		fl := w.(http.Flusher)
		fmt.Fprint(w, ":ok\n\n")
		for _, e := range events[index[r.Header.Get("Last-Event-ID")]:] {
			fmt.Fprintf(w, "event: message\nid: %s\ndata: %s\n\n", e.id, e.data)
		}
		fl.Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}
