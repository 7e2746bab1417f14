package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// sickStage is a service that is degraded and not ready.
type sickStage struct{}

func (sickStage) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (sickStage) Degraded() string              { return "feed position failing" }
func (sickStage) Ready(context.Context) error   { return errors.New("nats: no servers available") }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// getJSON fetches url until the server answers and decodes its JSON body.
func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	for i := 0; i < 100; i++ {
		resp, err := http.Get(url)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return resp.StatusCode, m
	}
	t.Fatalf("%s: no answer", url)
	return 0, nil
}

func TestServeAsksTheStageForHealthAndReadiness(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := common{healthAddr: freeAddr(t)}
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, "bridge", sickStage{}, func() any { return nil }, nil, &c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	code, m := getJSON(t, "http://"+c.healthAddr+"/healthz")
	if code != 200 || m["status"] != "degraded" || m["reason"] != "feed position failing" {
		t.Errorf("healthz: %d %v", code, m)
	}
	code, m = getJSON(t, "http://"+c.healthAddr+"/readyz")
	if code != 503 || m["status"] != "unready" || m["reason"] != "nats: no servers available" {
		t.Errorf("readyz: %d %v", code, m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
