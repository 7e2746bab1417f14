package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"testing"
)

// TestJSONIsCompressedOnRequest reads the series and /stats with and without
// Accept-Encoding: gzip. The compressed answers, inflated by the standard
// library's gzip reader, must be the same bytes as the plain ones, and smaller.
func TestJSONIsCompressedOnRequest(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	for _, target := range []string{"/stats/timeseries?window=24h", "/stats", "/openapi.json"} {
		plain := get(t, s, target)
		zipped := get(t, s, target, "Accept-Encoding", "gzip")
		if plain.status != 200 || zipped.status != 200 {
			t.Fatalf("%s: status %d / %d", target, plain.status, zipped.status)
		}
		if ce := plain.header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s without Accept-Encoding: Content-Encoding %q", target, ce)
		}
		if ce := zipped.header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("%s with Accept-Encoding gzip: Content-Encoding %q", target, ce)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped.body))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		inflated, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: inflate: %v", target, err)
		}
		if !json.Valid(inflated) {
			t.Errorf("%s: inflated body is not JSON: %.80q", target, inflated)
		}
		// /stats carries its freshness, which moves between two requests.
		if target != "/stats" && !bytes.Equal(inflated, plain.body) {
			t.Errorf("%s: inflated body differs from the plain one (%d vs %d bytes)", target, len(inflated), len(plain.body))
		}
		if target == "/stats/timeseries?window=24h" && len(zipped.body)*2 > len(plain.body) {
			t.Errorf("%s: %d bytes compressed of %d plain", target, len(zipped.body), len(plain.body))
		}
	}
}
