package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
)

// oddEvents are inputs the decoders must reject or mend the same way: canaries,
// broken JSON, missing or mistyped fields, odd tokens, escapes and invalid UTF-8.
var oddEvents = []string{
	`{"meta":{"domain":"canary","dt":"2024-01-01T00:00:00Z"}}`,
	`{"meta":`,
	`[1,2]`,
	`"meta"`,
	`{"type":"edit"}`,
	`{"meta":"x"}`,
	`{"meta":null}`,
	`{"meta":{"domain":"a.org","dt":"2024-01-01T00:00:00Z"}}`,
	`{"meta":{"id":"x","dt":"2024-01-01T00:00:00Z"}}`,
	`{"meta":{"id":"x","domain":"a.org"}}`,
	`{"meta":{"id":"x","domain":"a.org","dt":"yesterday"}}`,
	`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00.5Z"}}`,
	`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T02:00:00+02:00"},"wiki":"","type":""}`,
	`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"wiki":"we ird.wiki","type":"ed*it"}`,
	`{"meta":{"id":"x\u00e9\ud800","domain":"d\u00e9.org","dt":"2024-01-01T00:00:00Z"},"wiki":"w\u00e9","type":"n\u00e9w"}`,
	`{"m\u0065ta":{"\u0069d":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"w\u0069ki":"enwiki"}`,
	"{\"meta\":{\"id\":\"x\xff\",\"domain\":\"a\xfe.org\",\"dt\":\"2024-01-01T00:00:00Z\"},\"wiki\":\"w\xff\",\"type\":\"t\xff\"}",
	"{\"meta\":{\"id\":\"i\xff\xfe\",\"domain\":\"x\xff\xfe.org\",\"dt\":\"2024-01-01T00:00:00Z\"},\"type\":\"edit\"}",
	`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"wiki":7,"type":["edit"]}`,
	`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"type":"log"}`,
	"{\"meta\":{\"id\":\"x\",\n\"domain\":\"a.org\",\"dt\":\"2024-01-01T00:00:00Z\"},\n\"type\":\"new\"}",
	`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"type":"categorize","wiki":"enwiki"} trailing`,
	`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"comment":"` + strings.Repeat("a", MaxSize) + `"}`,
}

// TestParseHeadIsParsesHead checks that ParseHead gives exactly the Head fields
// and errors that Parse gives, on every recorded event and on oddEvents.
func TestParseHeadIsParsesHead(t *testing.T) {
	var raws [][]byte
	for _, rec := range recording.Events() {
		raws = append(raws, rec.Data)
	}
	for _, s := range oddEvents {
		raws = append(raws, []byte(s))
	}
	for _, raw := range raws {
		checkHeadIsParse(t, raw)
	}
}

// checkHeadIsParse fails t unless ParseHead and Parse agree on raw.
func checkHeadIsParse(t *testing.T, raw []byte) {
	t.Helper()
	e, perr := Parse(raw)
	h, herr := ParseHead(raw)
	if (perr == nil) != (herr == nil) || perr != nil && perr.Error() != herr.Error() {
		t.Fatalf("%.120q: ParseHead error %v, Parse error %v", raw, herr, perr)
	}
	if perr == nil && (h.ID != e.ID || h.Domain != e.Domain || !h.Time.Equal(e.Time) || h.Wiki != e.Wiki ||
		h.Type != e.Type || h.Subject("p") != e.Subject("p")) {
		t.Fatalf("%.120q: ParseHead %+v, Parse %+v", raw, h, e)
	}
}

// TestInvalidUTF8IsReplacedPerByteLikeEncodingJSON pins the replacement of invalid
// UTF-8 to encoding/json's: one U+FFFD per invalid byte, in every string field of
// both decoders and in the subject built from them.
func TestInvalidUTF8IsReplacedPerByteLikeEncodingJSON(t *testing.T) {
	raw := []byte("{\"meta\":{\"id\":\"i\xff\xfe\",\"domain\":\"x\xff\xfe.org\",\"dt\":\"2024-01-01T00:00:00Z\"},\"title\":\"t\xff\xfe\",\"type\":\"edit\"}")
	var ref struct {
		Meta  struct{ ID, Domain string }
		Title string
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.Meta.Domain != "x\uFFFD\uFFFD.org" {
		t.Fatalf("encoding/json gives %q", ref.Meta.Domain)
	}
	h, err := ParseHead(raw)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.Domain != ref.Meta.Domain || e.Domain != ref.Meta.Domain || h.ID != ref.Meta.ID || e.ID != ref.Meta.ID || e.Title != ref.Title {
		t.Fatalf("head %+v, event %+v, encoding/json %+v", h, e, ref)
	}
	if got, want := h.Subject("p"), "p."+Token(ref.Meta.Domain)+".edit"; got != want || got != "p.x_______org.edit" {
		t.Fatalf("subject %q, want %q", got, want)
	}
}

// jsonEvent decodes raw with encoding/json into generic maps (exact,
// case-sensitive keys as JSON means them) and applies Parse's rules on its own,
// for the head fields and for the title, user and flags. decoded is false when
// encoding/json cannot decode raw at all; verdict is the sentinel error Parse must
// wrap, nil for a usable event.
func jsonEvent(raw []byte) (e Event, decoded bool, verdict error) {
	var doc any
	if json.Unmarshal(raw, &doc) != nil {
		return e, false, nil
	}
	if len(raw) > MaxSize {
		return e, true, ErrTooLarge
	}
	obj, isObj := doc.(map[string]any)
	if !isObj {
		return e, true, ErrInvalid
	}
	meta, isObj := obj["meta"].(map[string]any)
	if !isObj {
		return e, true, ErrInvalid
	}
	e.Domain, _ = meta["domain"].(string)
	if e.Domain == CanaryDomain {
		return e, true, ErrCanary
	}
	e.ID, _ = meta["id"].(string)
	dt, _ := meta["dt"].(string)
	if e.ID == "" || e.Domain == "" || dt == "" {
		return e, true, ErrInvalid
	}
	t, err := time.Parse(time.RFC3339Nano, dt)
	if err != nil {
		return e, true, ErrInvalid
	}
	e.Time = t
	if e.Wiki, _ = obj["wiki"].(string); e.Wiki == "" {
		e.Wiki = e.Domain
	}
	if e.Type, _ = obj["type"].(string); e.Type == "" {
		e.Type = "unknown"
	}
	e.Title, _ = obj["title"].(string)
	e.User, _ = obj["user"].(string)
	e.Bot, _ = obj["bot"].(bool)
	e.Minor, _ = obj["minor"].(bool)
	return e, true, nil
}

// checkAgainstEncodingJSON fails t when encoding/json decodes raw and reaches
// another verdict or other values than ParseHead and Parse. JSON leaves two
// things open where the decoders legitimately differ, and those inputs are not
// compared: an object that repeats a key, and \u escapes of lone UTF-16
// surrogates.
func checkAgainstEncodingJSON(t *testing.T, raw []byte) {
	t.Helper()
	want, decoded, werr := jsonEvent(raw)
	if !decoded || repeatsKeys(raw) || strings.Contains(strings.ToLower(string(raw)), `\ud`) {
		return
	}
	h, herr := ParseHead(raw)
	e, perr := Parse(raw)
	if werr != nil || herr != nil || perr != nil {
		if !errors.Is(herr, werr) || !errors.Is(perr, werr) {
			t.Fatalf("%.200q: ParseHead error %v, Parse error %v, encoding/json finds %v", raw, herr, perr, werr)
		}
		return
	}
	if h.ID != want.ID || h.Domain != want.Domain || !h.Time.Equal(want.Time) || h.Wiki != want.Wiki || h.Type != want.Type {
		t.Fatalf("%.200q: ParseHead %+v, encoding/json %+v", raw, h, want)
	}
	if e.Title != want.Title || e.User != want.User || e.Bot != want.Bot || e.Minor != want.Minor {
		t.Fatalf("%.200q: Parse %+v, encoding/json %+v", raw, e, want)
	}
}

func TestDecodersAgreeWithEncodingJSON(t *testing.T) {
	for _, rec := range recording.Events() {
		checkAgainstEncodingJSON(t, rec.Data)
	}
	for _, s := range oddEvents {
		checkAgainstEncodingJSON(t, []byte(s))
	}
}

func BenchmarkParseHead(b *testing.B) {
	evs := recording.Events()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ParseHead(evs[i%len(evs)].Data); err != nil {
			b.Fatal(err)
		}
	}
}
