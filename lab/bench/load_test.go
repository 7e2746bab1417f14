package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	b, err := os.ReadFile("testdata/wrk.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseWrk(string(b))
	if err != nil {
		t.Fatal(err)
	}
	want := LoadResult{Tool: "wrk", Seconds: 10, Requests: 247396, Errors: 7, RPS: 24733.42, P50ms: 2.35, P99ms: 0.75}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseWrk =\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []string{"", "Requests/sec: 10\n"} {
		if _, err := ParseWrk(bad); err == nil {
			t.Errorf("ParseWrk(%q): no error", bad)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	got := WrkArgs("http://h/stats", 64, 10*time.Second, 2)
	want := []string{"-t2", "-c64", "-d10s", "--latency", "http://h/stats"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WrkArgs = %v", got)
	}
}

func TestLoad(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"stats":{}}`))
	}))
	defer srv.Close()
	r, err := Load(context.Background(), srv.URL, 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors == 0 || r.Connections != 4 || r.Tool != "go" {
		t.Errorf("Load = %+v: want requests, the 503s counted as errors, 4 connections", r)
	}
	served := n.Load()
	if got := r.Requests + r.Errors; got > served || got < served-4 {
		t.Errorf("requests %d + errors %d, but the server answered %d", r.Requests, r.Errors, served)
	}
	if r.P50ms <= 0 || r.P99ms < r.P50ms || r.RPS <= 0 {
		t.Errorf("Load latency/throughput = %+v", r)
	}
}
