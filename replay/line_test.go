package replay

import (
	"errors"
	"strings"
	"testing"
)

func TestCompactLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{\"a\": \"x y\",\n\"b\":[1, 2]}\n", `{"a":"x y","b":[1,2]}`},
		{"{\"a\":\r\n\t{\"b\" :\r\"c\"}}", `{"a":{"b":"c"}}`},
		{"{\"t\":\"a\nb\"}", `{"t":"a\nb"}`},
		{"{\"t\":\"a\\\"\r\nb\"}", `{"t":"a\"\r\nb"}`},
		{"{\"t\":\"a\\\\\"\n,\"u\":\"\t\x01\"}", `{"t":"a\\","u":"\t\u0001"}`},
	} {
		got, err := compactLine(nil, []byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("compactLine(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if hasControl(got) {
			t.Errorf("compactLine(%q) holds a control character", tc.in)
		}
	}
	for _, in := range []string{"{\"a\":\n", "{\"t\":\"a\\\nb\"}"} {
		if _, err := compactLine(nil, []byte(in)); !errors.Is(err, errNotJSON) {
			t.Errorf("compactLine(%q): %v, want errNotJSON", in, err)
		}
	}
}

// TestReplaySkipsWhatCannotBeOneLine logs an event that wikiflow's decoder takes
// but that stays invalid JSON once on one line (an escape cut by a line break),
// between two good ones: the replay writes the good ones and counts it skipped.
func TestReplaySkipsWhatCannotBeOneLine(t *testing.T) {
	const head = `{"meta":{"id":"%s","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"type":"edit","title":"`
	raws := [][]byte{
		[]byte(strings.Replace(head, "%s", "one", 1) + "t\"}"),
		[]byte(strings.Replace(head, "%s", "two", 1) + "t\\\nu\"}"),
		[]byte(strings.Replace(head, "%s", "three", 1) + "t\"}"),
	}
	nc, _ := fillWith(t, raws)
	for _, format := range []string{FormatNDJSON, FormatSSE} {
		cfg := DefaultConfig()
		cfg.Format = format
		out, sum, err := run(t, nc, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Events != 2 || sum.Skipped != 1 || strings.Contains(out, `"two"`) || !strings.Contains(out, `"three"`) {
			t.Fatalf("%s: %d events, %d skipped:\n%s", format, sum.Events, sum.Skipped, out)
		}
	}
}

// TestHasControlIsByteByByte checks the word-at-a-time scan against a plain loop
// on every single byte value at every position of a 46-byte text, and on each
// byte following a borrow-prone neighbour.
func TestHasControlIsByteByByte(t *testing.T) {
	plain := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 {
				return true
			}
		}
		return false
	}
	buf := []byte("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ")
	for pos := range buf {
		for v := range 256 {
			for _, prev := range []byte{0x00, 0x20, 0x7f, 0x80, 0xff} {
				b := append([]byte(nil), buf...)
				b[pos] = byte(v)
				if pos > 0 {
					b[pos-1] = prev
				}
				if got, want := hasControl(b), plain(b); got != want {
					t.Fatalf("hasControl(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}
