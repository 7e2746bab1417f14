package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/wikiflow/wikiflow/internal/recording"
)

func readAll(t *testing.T, r *Reader) ([]Event, error) {
	t.Helper()
	var evs []Event
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return evs, nil
			}
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestReaderFraming(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Event
		err   error
	}{
		{"wikimedia frame", ":ok\n\nevent: message\nid: [{\"a\":1}]\ndata: {\"x\":1}\n\n",
			[]Event{{Type: "message", ID: `[{"a":1}]`, Data: []byte(`{"x":1}`), Retry: -1}}, nil},
		{"crlf", "event: message\r\nid: 7\r\ndata: a\r\n\r\n", []Event{{Type: "message", ID: "7", Data: []byte("a"), Retry: -1}}, nil},
		{"lone cr", "data: a\rdata: b\r\r", []Event{{Type: "message", Data: []byte("a\nb"), Retry: -1}}, nil},
		{"default type and no space", "data:x\n\n", []Event{{Type: "message", Data: []byte("x"), Retry: -1}}, nil},
		{"error event", "event: error\ndata: {\"status\":500}\n\n", []Event{{Type: "error", Data: []byte(`{"status":500}`), Retry: -1}}, nil},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", []Event{{Type: "message", ID: "1", Data: []byte("a"), Retry: -1}, {Type: "message", ID: "1", Data: []byte("b"), Retry: -1}}, nil},
		{"frame without data is not dispatched", "event: message\nid: 3\n\n", nil, nil},
		{"retry", "retry: 1500\ndata: a\n\n", []Event{{Type: "message", Data: []byte("a"), Retry: 1500}}, nil},
		{"truncated last frame", "data: a\n\ndata: b\n", []Event{{Type: "message", Data: []byte("a"), Retry: -1}}, ErrTruncated},
		{"truncated mid line", "data: a\n\ndata: {\"ha", []Event{{Type: "message", Data: []byte("a"), Retry: -1}}, ErrTruncated},
		{"comments only", ":ok\n: keep-alive\n\n", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, one := range []bool{false, true} {
				var src io.Reader = strings.NewReader(tc.input)
				if one {
					src = iotest.OneByteReader(src)
				}
				got, err := readAll(t, NewReader(src, 0))
				if !errors.Is(err, tc.err) && !(err == nil && tc.err == nil) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("one byte=%v: got %d events %+v, want %d", one, len(got), got, len(tc.want))
				}
				for i := range got {
					g, w := got[i], tc.want[i]
					if g.Type != w.Type || g.ID != w.ID || !bytes.Equal(g.Data, w.Data) || g.Retry != w.Retry {
						t.Fatalf("event %d = %+v, want %+v", i, g, w)
					}
				}
			}
		})
	}
}

func TestReaderLongLines(t *testing.T) {
	big := strings.Repeat("x", 3<<20)
	r := NewReader(strings.NewReader("data: "+big+"\n\ndata: next\n\n"), 4<<20)
	evs, err := readAll(t, r)
	if err != nil || len(evs) != 2 || len(evs[0].Data) != len(big) || evs[0].Oversize || string(evs[1].Data) != "next" {
		t.Fatalf("3 MiB line: %d events, err %v", len(evs), err)
	}
	r = NewReader(strings.NewReader("data: "+big+"\n\ndata: next\n\n"), 1<<20)
	evs, err = readAll(t, r)
	if err != nil || len(evs) != 2 || !evs[0].Oversize || len(evs[0].Data) > 1<<20 || string(evs[1].Data) != "next" {
		t.Fatalf("over the limit: %d events, err %v", len(evs), err)
	}
}

func TestReaderRealCapture(t *testing.T) {
	evs, err := readAll(t, NewReader(bytes.NewReader(recording.SSECapture()), 0))
	if !errors.Is(err, ErrTruncated) || len(evs) != 2 {
		t.Fatalf("capture: %d events, err %v (want 2 and ErrTruncated: its last frame is unterminated)", len(evs), err)
	}
	const id = `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"timestamp":1670732822001},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]`
	for _, ev := range evs {
		if ev.ID != id || ev.Type != "message" || !bytes.HasPrefix(ev.Data, []byte(`{"$schema"`)) {
			t.Fatalf("%+v", ev)
		}
	}
}

func TestWriteThenReadRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteComment(&b, "ok"); err != nil {
		t.Fatal(err)
	}
	in := []Event{
		{Type: "message", ID: `[{"offset":1}]`, Data: []byte(`{"a":"b"}`), Retry: -1},
		{Type: "error", Data: []byte("line1\nline2"), Retry: -1},
	}
	for _, ev := range in {
		if err := WriteEvent(&b, ev); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(b.String(), ":ok\nevent: message\nid: [{\"offset\":1}]\ndata: {\"a\":\"b\"}\n\n") {
		t.Fatalf("layout: %q", b.String())
	}
	out, err := readAll(t, NewReader(&b, 0))
	if err != nil || len(out) != 2 || string(out[1].Data) != "line1\nline2" || out[1].ID != in[0].ID {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestAppendFrameLayout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    []byte
		want     string
		wantData string
	}{
		{"one line, string id", AppendFrame([]byte(":ok\n\n"), "message", `[{"offset":7}]`, []byte(`{"a":1}`), "\n"),
			":ok\n\nevent: message\nid: [{\"offset\":7}]\ndata: {\"a\":1}\n\n", `{"a":1}`},
		{"no id, bytes", AppendFrame(nil, "error", []byte(nil), []byte(`{"status":500}`), "\n"),
			"event: error\ndata: {\"status\":500}\n\n", `{"status":500}`},
		{"CRLF", AppendFrame(nil, "message", "1", []byte("x"), "\r\n"),
			"event: message\r\nid: 1\r\ndata: x\r\n\r\n", "x"},
		{"several data lines", AppendFrame(nil, "message", []byte("2"), []byte("a\nb\n"), "\n"),
			"event: message\nid: 2\ndata: a\ndata: b\ndata: \n\n", "a\nb\n"},
	} {
		if string(tc.frame) != tc.want {
			t.Errorf("%s: frame %q, want %q", tc.name, tc.frame, tc.want)
			continue
		}
		out, err := readAll(t, NewReader(bytes.NewReader(tc.frame), 0))
		if err != nil || len(out) != 1 || string(out[0].Data) != tc.wantData {
			t.Errorf("%s: read back %+v, %v", tc.name, out, err)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(recording.SSECapture())
	f.Add([]byte(":ok\r\n\r\nevent: message\r\nid: 1\r\ndata: {}\r\n\r\n"))
	f.Add([]byte("data: a\rdata: b\r\r\n"))
	f.Add([]byte("retry: x\nid: a\x00b\ndata\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 256)
		total := 0
		for i := 0; ; i++ {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTruncated) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			total += len(ev.Data)
			if ev.Type == "" {
				t.Fatal("event without a type")
			}
			if bytes.ContainsAny(ev.Data, "\r") {
				t.Fatalf("data keeps a line terminator: %q", ev.Data)
			}
			if i > len(in) {
				t.Fatal("more events than input bytes")
			}
		}
		if total > len(in) {
			t.Fatalf("%d data bytes out of %d input bytes", total, len(in))
		}
	})
}

func TestLineEnd(t *testing.T) {
	for in, want := range map[string]int{
		"": -1, "abc": -1, "a\nb": 1, "a\rb": 1, "ab\r\n": 2, "ab\n\r": 2, "\r": 0, "\n\n": 0,
		strings.Repeat("x", 3000) + "\r\n": 3000,
	} {
		if got := lineEnd([]byte(in)); got != want {
			t.Errorf("lineEnd(%.10q…) = %d, want %d", in, got, want)
		}
	}
}

// BenchmarkReader reads the recording's events framed as the feed frames them
// (an id line, a data line of about 1.3 KB, a blank line).
func BenchmarkReader(b *testing.B) {
	var data []byte
	n := 0
	for _, ev := range recording.Events() {
		data = AppendFrame(data, "message", `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":1}]`, ev.Data, "\n")
		n++
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), 0)
		got := 0
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			got++
		}
		if got != n {
			b.Fatalf("read %d events, want %d", got, n)
		}
	}
}
