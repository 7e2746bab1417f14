package ingest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
)

// TestConnectOutcomes checks how one connection ends, without Kafka: the items
// it produces go to a buffered channel.
func TestConnectOutcomes(t *testing.T) {
	ev := recording.Events()[0].Data
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/v2/stream/recentchange"
	}
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		url      string
		items    int
		want     []string
		progress bool
		wait     time.Duration
	}{
		{
			name:    "403",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no UA", http.StatusForbidden) },
			want:    []string{"403", "User-Agent", "--contact"},
		},
		{
			name: "429",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			want: []string{"429"},
			wait: 7 * time.Second,
		},
		{
			name: "unreachable",
			url:  closed(),
			want: []string{"cannot reach 127.0.0.1:", "offline? use SOURCE=sample"},
		},
		{
			name: "other event types ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, ":ok\n\nevent: ping\ndata: {}\n\nevent: message\nid: [1]\ndata: "+string(ev)+"\n\n")
			},
			items:    1,
			progress: true,
			want:     []string{"server closed the stream"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = tc.url
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				cfg.URL = srv.URL
			}
			in, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			out := make(chan item, 10)
			f := &feed{in: in, out: out, seen: newRecentIDs(10)}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a := f.connect(ctx)
			for _, w := range tc.want {
				if a.err == nil || !strings.Contains(a.err.Error(), w) {
					t.Errorf("error %v does not mention %q", a.err, w)
				}
			}
			if len(out) != tc.items || a.progress != tc.progress || a.wait != tc.wait {
				t.Errorf("items %d progress %v wait %s; want %d %v %s", len(out), a.progress, a.wait, tc.items, tc.progress, tc.wait)
			}
			if tc.items > 0 && in.LastEventID() != "[1]" {
				t.Errorf("LastEventID %q, want [1]", in.LastEventID())
			}
		})
	}
}
