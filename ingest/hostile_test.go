package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/lab/emulator"
)

// recordedMetaIDs reads meta.id of every line of the bundled recording with
// encoding/json, independently of internal/recording and internal/event.
func recordedMetaIDs(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../internal/recording/data/recentchange.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v struct {
			Meta struct {
				ID string `json:"id"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.Meta.ID == "" {
			t.Fatalf("recording line %d: meta.id %q (%v)", len(ids)+1, v.Meta.ID, err)
		}
		ids[v.Meta.ID] = true
	}
	return ids
}

// checkSubject asserts that r's subject header is the subject the bridge would
// give r's value after parsing it, so that the bridge may route by the header.
func checkSubject(t *testing.T, r record) {
	t.Helper()
	h, err := event.ParseHead(r.Value)
	if err != nil {
		t.Fatalf("record value: %v", err)
	}
	got, ok := r.Headers[wire.HeaderSubject]
	if want := h.Subject(wire.SubjectPrefix); !ok || got != want {
		t.Errorf("record with meta.id %s: %s header %q (present %v), want %q", h.ID, wire.HeaderSubject, got, ok, want)
	}
	if !event.ValidSubject(wire.SubjectPrefix, []byte(got)) {
		t.Errorf("record with meta.id %s: %s header %q is not a valid subject", h.ID, wire.HeaderSubject, got)
	}
}

// TestErrorFrameAtTheResumePoint reproduces the livelock: the emulator serves the
// real recording, cuts each connection in the middle of its 300th frame, resumes
// 5 events before the Last-Event-ID position and sends an error frame before the
// 3rd frame of every resumed connection, so the error always comes among the
// repeated events, before anything new. Before, ingest ended the connection at the
// error frame, counted the repeated duplicates as a healthy connection and went
// back to the same (or an earlier) position once a second for ever. Now it reads
// on past the error frame and publishes every distinct event of the recording,
// exactly once, one connection at a time, each record with the subject header the
// bridge routes it by.
func TestErrorFrameAtTheResumePoint(t *testing.T) {
	t.Parallel()
	ecfg := emulator.DefaultConfig()
	ecfg.Speed = 0
	ecfg.MaxConns = 1
	ecfg.CutEvery = 300
	ecfg.RepeatOnResume = 5
	ecfg.ErrorOnResume = 3
	emu, err := emulator.New(ecfg, emulator.RecordingSource(), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)

	want := recordedMetaIDs(t)
	if len(want) != 2723 {
		t.Fatalf("the recording holds %d distinct meta.ids, want 2723", len(want))
	}
	cfg := testConfig(t, srv.URL+ecfg.Path)
	in, stop := startIngest(t, cfg)
	waitFor(t, "every recorded event published", func() bool { return in.Stats().Published.Load() >= int64(len(want)) })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	recs := readTopic(t, cfg.Kafka.Brokers[0], cfg.Kafka.Topic)
	got := map[string]bool{}
	for _, r := range recs {
		var v struct {
			Meta struct {
				ID string `json:"id"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record value: %v", err)
		}
		if v.Meta.ID != r.Headers[wire.HeaderMetaID] {
			t.Errorf("record with meta.id %s carries header %s", v.Meta.ID, r.Headers[wire.HeaderMetaID])
		}
		checkSubject(t, r)
		if got[v.Meta.ID] {
			t.Errorf("meta.id %s written twice", v.Meta.ID)
		}
		got[v.Meta.ID] = true
	}
	for id := range want {
		if !got[id] {
			t.Errorf("meta.id %s of the recording is missing", id)
		}
	}
	if len(recs) != len(want) {
		t.Errorf("%d records, want %d", len(recs), len(want))
	}
	est, st := emu.Stats(), in.Stats()
	if est.Errors.Load() == 0 || st.ErrorFrames.Load() != est.Errors.Load() {
		t.Errorf("emulator sent %d error frames, ingest counted %d", est.Errors.Load(), st.ErrorFrames.Load())
	}
	if r := est.Rejected.Load(); r != 0 {
		t.Errorf("%d connections refused with 429: ingest opened two at once", r)
	}
	// One connection per 300 frames or so, each with progress: no storm.
	if c := st.Connections.Load(); c > 20 {
		t.Errorf("%d connections for %d events", c, len(want))
	}
	t.Logf("%d connections, %d error frames, %d duplicates skipped", st.Connections.Load(), st.ErrorFrames.Load(), st.Duplicates.Load())
}

// quietLogger discards logs (for the emulator, whose lines would drown ingest's).
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
