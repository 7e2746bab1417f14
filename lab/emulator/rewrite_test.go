package emulator

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
)

func TestLocateAndRewrite(t *testing.T) {
	tests := []struct {
		name, in, id string
		shift        time.Duration
		want         string
	}{
		{
			name:  "compact",
			in:    `{"meta":{"id":"a","dt":"2026-05-05T11:17:40.123Z"},"timestamp":1777979860,"x":1}`,
			id:    "b",
			shift: 2 * time.Second,
			want:  `{"meta":{"id":"b","dt":"2026-05-05T11:17:42.123Z"},"timestamp":1777979862,"x":1}`,
		},
		{
			name:  "spaced, seconds precision, timestamp first",
			in:    `{"timestamp": 1670732822, "meta": {"dt": "2022-12-11T04:27:02Z", "id": "a"}}`,
			shift: time.Hour,
			want:  `{"timestamp": 1670736422, "meta": {"dt": "2022-12-11T05:27:02Z", "id": "a"}}`,
		},
		{
			name: "nested look-alikes stay",
			in:   `{"log_params":{"meta":{"id":"no"},"timestamp":5},"comment":"\"meta\":{\"id\":\"x\"}","meta":{"uri":"u\"}","id":"a","dt":"2026-01-01T00:00:00Z"},"timestamp":10}`,
			id:   "z", shift: time.Second,
			want: `{"log_params":{"meta":{"id":"no"},"timestamp":5},"comment":"\"meta\":{\"id\":\"x\"}","meta":{"uri":"u\"}","id":"z","dt":"2026-01-01T00:00:01Z"},"timestamp":11}`,
		},
		{
			name: "no timestamp, unparsable dt kept",
			in:   `{"meta":{"id":"a","dt":"yesterday"}}`,
			id:   "b", shift: time.Second,
			want: `{"meta":{"id":"b","dt":"yesterday"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := locate([]byte(tt.in))
			if !ok {
				t.Fatal("locate failed")
			}
			if got := string(rewrite([]byte(tt.in), f, tt.id, tt.shift)); got != tt.want {
				t.Errorf("rewrite:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLocateRejectsBadJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `{"meta":{"id":"a"}`, `{"a":1,}`, `[1]`, `{"a":tru}`, `{"a":1} x`} {
		if _, ok := locate([]byte(in)); ok {
			t.Errorf("locate(%q) accepted bad JSON", in)
		}
	}
}

func TestLocateFindsEveryRecordedEvent(t *testing.T) {
	for _, r := range recording.Events() {
		f, ok := locate(r.Data)
		if !ok || !f.id.ok() || !f.dt.ok() || !f.ts.ok() || !f.comment.ok() {
			t.Fatalf("line %d: located %+v, ok %v", r.Line, f, ok)
		}
		var v struct {
			Meta struct{ ID, DT string }
		}
		if err := json.Unmarshal(r.Data, &v); err != nil {
			t.Fatal(err)
		}
		if string(r.Data[f.id.start:f.id.end]) != v.Meta.ID || string(r.Data[f.dt.start:f.dt.end]) != v.Meta.DT {
			t.Fatalf("line %d: wrong spans", r.Line)
		}
	}
}

func TestFormatDTKeepsPrecision(t *testing.T) {
	for _, in := range []string{"2022-12-11T04:27:02Z", "2026-05-05T11:17:40.000Z", "2026-05-05T11:17:40.120Z", "2026-05-05T11:17:40.123456Z"} {
		tm, digits, ok := parseDT([]byte(in))
		if !ok {
			t.Fatalf("parseDT(%q) failed", in)
		}
		if got := formatDT(tm, digits); got != in {
			t.Errorf("formatDT(parseDT(%q)) = %q", in, got)
		}
	}
}

func TestUUIDFor(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a := uuidFor("loop", 1, 2)
	if !re.MatchString(a) {
		t.Errorf("uuid %q is not an RFC 4122 version 5 UUID", a)
	}
	if a != uuidFor("loop", 1, 2) {
		t.Error("not deterministic")
	}
	seen := map[string]bool{}
	for _, u := range []string{a, uuidFor("loop", 2, 1), uuidFor("loop", 1, 3), uuidFor("canary", 1, 2)} {
		if seen[u] {
			t.Errorf("uuid %s derived twice", u)
		}
		seen[u] = true
	}
}
