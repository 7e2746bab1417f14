package api

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// stopRun cancels a Run whose result comes on done and fails t unless it returns
// nil within 15 s; when says in which situation.
func stopRun(t *testing.T, cancel context.CancelFunc, done <-chan error, when string) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("Run did not return " + when)
	}
}

// startServer runs s (whose Config.Addr should be "127.0.0.1:0") until the test
// ends and returns its base URL. The cleanup cancels Run and checks that it
// returns nil within 15 s.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { stopRun(t, cancel, done, "after cancel") })
	for i := 0; i < 500; i++ {
		if a := s.Addr(); a != nil {
			return "http://" + a.String()
		}
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("server did not listen")
	return ""
}

// fetch GETs url over the network and returns its status and body.
func fetch(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, b
}
