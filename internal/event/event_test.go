package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
)

// reference decodes with encoding/json, independently of the fastjson path.
type reference struct {
	Meta struct {
		ID     string `json:"id"`
		Domain string `json:"domain"`
		Dt     string `json:"dt"`
	} `json:"meta"`
	Wiki      string `json:"wiki"`
	Type      string `json:"type"`
	Namespace int    `json:"namespace"`
	Title     string `json:"title"`
	User      string `json:"user"`
	Bot       bool   `json:"bot"`
	Minor     bool   `json:"minor"`
	Length    *struct {
		Old int `json:"old"`
		New int `json:"new"`
	} `json:"length"`
}

func TestParseAgreesWithEncodingJSONOnEveryRecordedEvent(t *testing.T) {
	evs := recording.Events()
	for _, rec := range evs {
		got, err := Parse(rec.Data)
		if err != nil {
			t.Fatalf("line %d: %v", rec.Line, err)
		}
		var ref reference
		if err := json.Unmarshal(rec.Data, &ref); err != nil {
			t.Fatalf("line %d: %v", rec.Line, err)
		}
		dt, _ := time.Parse(time.RFC3339, ref.Meta.Dt)
		if got.ID != ref.Meta.ID || got.Domain != ref.Meta.Domain || !got.Time.Equal(dt) ||
			got.Wiki != ref.Wiki || got.Type != ref.Type || got.Namespace != ref.Namespace ||
			got.Title != ref.Title || got.User != ref.User || got.Bot != ref.Bot || got.Minor != ref.Minor ||
			got.HasLength != (ref.Length != nil) {
			t.Fatalf("line %d: parsed %+v, reference %+v", rec.Line, got, ref)
		}
		if ref.Length != nil && (got.LengthOld != ref.Length.Old || got.LengthNew != ref.Length.New) {
			t.Fatalf("line %d: length %d→%d, reference %+v", rec.Line, got.LengthOld, got.LengthNew, *ref.Length)
		}
	}
}

func TestParseRejectsWithReasons(t *testing.T) {
	tests := []struct {
		name, raw string
		want      error
		reason    string
	}{
		{"canary", `{"meta":{"domain":"canary","dt":"2024-01-01T00:00:00Z"}}`, ErrCanary, ""},
		{"not json", `{"meta":`, ErrInvalid, ""},
		{"array", `[1,2]`, ErrInvalid, "not a JSON object"},
		{"no meta", `{"type":"edit"}`, ErrInvalid, "no meta"},
		{"no id", `{"meta":{"domain":"a.org","dt":"2024-01-01T00:00:00Z"}}`, ErrInvalid, "meta.id"},
		{"no domain", `{"meta":{"id":"x","dt":"2024-01-01T00:00:00Z"}}`, ErrInvalid, "meta.domain"},
		{"no dt", `{"meta":{"id":"x","domain":"a.org"}}`, ErrInvalid, "meta.dt"},
		{"bad dt", `{"meta":{"id":"x","domain":"a.org","dt":"yesterday"}}`, ErrInvalid, "yesterday"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.raw))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.reason)
			}
		})
	}
	big := `{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"comment":"` + strings.Repeat("a", MaxSize) + `"}`
	if _, err := Parse([]byte(big)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("2 MB event: %v", err)
	}
}

func TestMinimalEventDefaults(t *testing.T) {
	e, err := Parse([]byte(`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00.5Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Wiki != "a.org" || e.Type != "unknown" || e.Time.UnixMilli() != 1704067200500 || e.Delta() != 0 {
		t.Fatalf("%+v", e)
	}
}

func TestEditorKindAndToken(t *testing.T) {
	for user, want := range map[string]string{
		"Chuck Entz": EditorRegistered, "192.0.2.7": EditorAnonymous, "2001:db8::1": EditorAnonymous,
		"~2025-31415-9": EditorTemporary, "": EditorAnonymous,
	} {
		if got := (&Event{User: user}).EditorKind(); got != want {
			t.Errorf("%q: %s, want %s", user, got, want)
		}
	}
	for in, want := range map[string]string{"enwiki": "enwiki", "": "unknown", "a.b c>*": "a_b_c__", "zh-min-nan": "zh-min-nan"} {
		if got := Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
	e := Event{Wiki: "en.wiki", Type: "edit"}
	if got := e.Subject("p"); got != "p.en_wiki.edit" {
		t.Errorf("subject %q", got)
	}
}

func TestValidSubject(t *testing.T) {
	const prefix = "wikimedia.recentchange"
	for _, e := range recording.Events() {
		h, err := ParseHead(e.Data)
		if err != nil {
			t.Fatalf("line %d: %v", e.Line, err)
		}
		if s := h.Subject(prefix); !ValidSubject(prefix, []byte(s)) {
			t.Errorf("line %d: subject %q refused", e.Line, s)
		}
	}
	for _, in := range [][2]string{{"", ""}, {"a.b c", "ed*it"}, {"zh-min-nan", "log"}, {"é", "\n"}} {
		if s := subject(prefix, in[0], in[1]); !ValidSubject(prefix, []byte(s)) {
			t.Errorf("wiki %q type %q: subject %q refused", in[0], in[1], s)
		}
		if b := AppendSubject([]byte("x"), prefix, in[0], in[1]); string(b) != "x"+subject(prefix, in[0], in[1]) {
			t.Errorf("wiki %q type %q: AppendSubject gave %q", in[0], in[1], b)
		}
	}
	for _, s := range []string{
		"", prefix, prefix + ".", prefix + ".enwiki", prefix + ".enwiki.", prefix + "..edit",
		prefix + ".enwiki.edit.", prefix + ".en.wiki.edit", prefix + ".en wiki.edit", prefix + ".enwiki.edit ",
		prefix + ".enwiki.*", prefix + ".>", prefix + ".enwiki.ed\x00it", "wikimedia.recentchangeX.enwiki.edit",
		"other.prefix.enwiki.edit", "wikimedia.recentchang.enwiki.edit", "enwiki.edit",
	} {
		if ValidSubject(prefix, []byte(s)) {
			t.Errorf("subject %q accepted", s)
		}
	}
}

func TestMetaID(t *testing.T) {
	raw := recording.Events()[0].Data
	id, domain, err := MetaID(raw)
	if err != nil || id != "da75cd5f-4dc4-4954-8a88-b5b6d4fec7e4" || domain != "commons.wikimedia.org" {
		t.Fatalf("%q %q %v", id, domain, err)
	}
	if _, _, err := MetaID([]byte(`{"meta":{"domain":"canary"}}`)); !errors.Is(err, ErrCanary) {
		t.Fatal(err)
	}
}

// FuzzParse checks the decoders against each other and against encoding/json:
// ParseHead must give exactly Parse's head fields and errors, and where
// encoding/json decodes the bytes, both must reach its verdict and its values
// (checkAgainstEncodingJSON, which also names what JSON leaves open).
func FuzzParse(f *testing.F) {
	for i, rec := range recording.Events() {
		if i%50 == 0 {
			f.Add(rec.Data)
		}
	}
	for _, s := range oddEvents {
		if len(s) < 4096 {
			f.Add([]byte(s))
		}
	}
	f.Add([]byte(`{"meta":{"id":"x","domain":"a","dt":"2024-01-01T00:00:00Z"},"length":[]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Parse(raw)
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrCanary) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("unclassified error %v", err)
		}
		if err == nil && (e.ID == "" || e.Domain == "" || e.Time.IsZero() || e.Wiki == "" || e.Type == "") {
			t.Fatalf("accepted event lacks required fields: %+v", e)
		}
		checkHeadIsParse(t, raw)
		checkAgainstEncodingJSON(t, raw)
	})
}

// repeatsKeys reports whether some JSON object in raw has the same key twice.
func repeatsKeys(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{object: true, keys: map[string]bool{}, key: true})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.object && top.key {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		// A value ended: in an object, a key comes next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

func TestRepeatsKeys(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"a":1,"b":{"a":2}}`:          false,
		`{"a":1,"a":2}`:                true,
		`{"m":{"id":"0","id":""}}`:     true,
		`[{"a":1},{"a":2}]`:            false,
		`{"a":[1,{"b":1,"b":2}]}`:      true,
		`{"a":"b","c":{"d":[]},"e":1}`: false,
	} {
		if got := repeatsKeys([]byte(raw)); got != want {
			t.Errorf("repeatsKeys(%s) = %v, want %v", raw, got, want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	evs := recording.Events()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(evs[i%len(evs)].Data); err != nil {
			b.Fatal(err)
		}
	}
}
