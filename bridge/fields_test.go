package bridge

import (
	"errors"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// TestParseFieldsAgreesWithEventParse checks that the bridge's own field
// extraction gives what event.Parse gives, on every recorded event and on the
// events it must reject or mend.
func TestParseFieldsAgreesWithEventParse(t *testing.T) {
	raws := [][]byte{}
	for _, s := range events(t) {
		raws = append(raws, s.raw)
	}
	for _, s := range []string{
		`{"meta":{"domain":"canary","dt":"2024-01-01T00:00:00Z"}}`,
		`{"meta":`,
		`[1,2]`,
		`"meta"`,
		`{"type":"edit"}`,
		`{"meta":"x"}`,
		`{"meta":{"domain":"a.org","dt":"2024-01-01T00:00:00Z"}}`,
		`{"meta":{"id":"x","dt":"2024-01-01T00:00:00Z"}}`,
		`{"meta":{"id":"x","domain":"a.org"}}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"yesterday"}}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00.5Z"}}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T02:00:00+02:00"},"wiki":"","type":""}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"wiki":"we ird.wiki","type":"ed*it"}`,
		`{"meta":{"id":"x\u00e9\ud800","domain":"d\u00e9.org","dt":"2024-01-01T00:00:00Z"},"wiki":"w\u00e9","type":"n\u00e9w"}`,
		"{\"meta\":{\"id\":\"x\xff\",\"domain\":\"a\xfe.org\",\"dt\":\"2024-01-01T00:00:00Z\"},\"wiki\":\"w\xff\",\"type\":\"t\xff\"}",
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"wiki":7,"type":["edit"]}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"type":"log"}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"type":"categorize","wiki":"enwiki"} trailing`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"comment":"` + strings.Repeat("a", event.MaxSize) + `"}`,
	} {
		raws = append(raws, []byte(s))
	}
	for _, raw := range raws {
		want, werr := event.Parse(raw)
		got, gerr := parseFields(raw)
		name := string(raw[:min(len(raw), 120)])
		switch {
		case werr != nil || gerr != nil:
			for _, kind := range []error{event.ErrCanary, event.ErrInvalid, event.ErrTooLarge} {
				if errors.Is(werr, kind) != errors.Is(gerr, kind) {
					t.Errorf("%s: error %v, event.Parse says %v", name, gerr, werr)
				}
			}
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Errorf("%s: error %q, event.Parse says %q", name, gerr, werr)
			}
		case got.id != want.ID || got.domain != want.Domain || !got.time.Equal(want.Time) ||
			wire.SubjectPrefix+"."+got.wiki+"."+got.typ != want.Subject(wire.SubjectPrefix):
			t.Errorf("%s: got %+v, event.Parse gives %+v", name, got, want)
		}
	}
}
