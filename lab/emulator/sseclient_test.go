package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// pyEvent is one event as sseclient-py dispatched it.
type pyEvent struct {
	Event string  `json:"event"`
	ID    *string `json:"id"`
	Data  string  `json:"data"`
}

// readWithSSEClient reads count events of url with Python's sseclient-py (the
// client of the Python project wikiflow grew from), sending lastID when set. It
// skips outside CI when python3 or the package is missing, and fails under CI.
func readWithSSEClient(t *testing.T, url string, count int, lastID string) []pyEvent {
	t.Helper()
	if err := exec.Command("python3", "-c", "import sseclient").Run(); err != nil {
		msg := "python3 with sseclient-py is needed (pip install -r tools/python/requirements.txt): " + err.Error()
		if testenv.InCI() {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"../../tools/python/sseclient_read.py", url, jsonInt(int64(count))}
	if lastID != "" {
		args = append(args, lastID)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "python3", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sseclient_read.py: %v\n%s", err, stderr.Bytes())
	}
	var evs []pyEvent
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev pyEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d of the script's output: %v", len(evs)+1, err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != count {
		t.Fatalf("sseclient-py read %d events, want %d", len(evs), count)
	}
	return evs
}

// TestFramingReadBySSEClientPy has an independent SSE client read the emulator's
// feed: the whole recording with LF line ends, and a resumed CRLF stream with
// repeats and an error frame. Every event must come out with its type, its
// Wikimedia id and its data byte for byte.
func TestFramingReadBySSEClientPy(t *testing.T) {
	recs := recording.Events()
	t.Run("whole recording", func(t *testing.T) {
		_, url := serve(t, testConfig(), RecordingSource())
		evs := readWithSSEClient(t, url, len(recs), "")
		for i, ev := range evs {
			if ev.Event != "message" || ev.ID == nil || *ev.ID != offsetID(int64(i)) || ev.Data != string(recs[i].Data) {
				t.Fatalf("event %d: %s id %v, data equal %v", i, ev.Event, ev.ID, ev.Data == string(recs[i].Data))
			}
		}
	})
	t.Run("crlf resume with an error frame", func(t *testing.T) {
		cfg := testConfig()
		cfg.CRLF = true
		cfg.RepeatOnResume, cfg.ErrorOnResume = 3, 2
		_, url := serve(t, cfg, RecordingSource())
		evs := readWithSSEClient(t, url, 50, offsetID(99))
		pos := int64(97)
		for i, ev := range evs {
			if i == 1 {
				var body struct{ Message string }
				if ev.Event != "error" || ev.ID != nil || json.Unmarshal([]byte(ev.Data), &body) != nil || body.Message == "" {
					t.Fatalf("frame 1: %s id %v data %q, want an error frame with a JSON message and no id", ev.Event, ev.ID, ev.Data)
				}
				continue
			}
			if ev.Event != "message" || ev.ID == nil || *ev.ID != offsetID(pos) || ev.Data != string(recs[pos].Data) {
				t.Fatalf("frame %d: %s id %v, want position %d", i, ev.Event, ev.ID, pos)
			}
			pos++
		}
	})
}
