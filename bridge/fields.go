package bridge

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/wikiflow/wikiflow/internal/event"
)

// fields are what the bridge needs of an event: its id, the tokens of its subject
// and the values of the event-time and domain headers.
type fields struct {
	id, domain string
	// wiki and typ are the subject tokens, already sanitised by event.Token.
	wiki, typ string
	// time is meta.dt.
	time time.Time
}

var parsers fastjson.ParserPool

// parseFields extracts the fields the bridge needs, under the rules of event.Parse
// (which also decodes the title, user, lengths and flags the bridge has no use
// for): the same size limit, the same errors wrapping event.ErrCanary,
// event.ErrTooLarge or event.ErrInvalid, the same fallbacks (wiki to the domain,
// type to "unknown") and invalid UTF-8 replaced.
func parseFields(raw []byte) (fields, error) {
	var f fields
	if len(raw) > event.MaxSize {
		return f, fmt.Errorf("%w: %d bytes, limit %d", event.ErrTooLarge, len(raw), event.MaxSize)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(raw)
	if err != nil {
		return f, fmt.Errorf("%w: %v", event.ErrInvalid, err)
	}
	if v.Type() != fastjson.TypeObject {
		return f, fmt.Errorf("%w: not a JSON object", event.ErrInvalid)
	}
	meta := v.Get("meta")
	if meta == nil || meta.Type() != fastjson.TypeObject {
		return f, fmt.Errorf("%w: no meta object", event.ErrInvalid)
	}
	f.domain = text(meta.GetStringBytes("domain"))
	if f.domain == event.CanaryDomain {
		return f, event.ErrCanary
	}
	f.id = text(meta.GetStringBytes("id"))
	if f.id == "" {
		return f, fmt.Errorf("%w: no meta.id", event.ErrInvalid)
	}
	if f.domain == "" {
		return f, fmt.Errorf("%w: no meta.domain", event.ErrInvalid)
	}
	dt := meta.GetStringBytes("dt")
	if len(dt) == 0 {
		return f, fmt.Errorf("%w: no meta.dt", event.ErrInvalid)
	}
	if f.time, err = time.Parse(time.RFC3339Nano, string(dt)); err != nil {
		return f, fmt.Errorf("%w: meta.dt %q: %v", event.ErrInvalid, dt, err)
	}
	f.wiki = f.domain
	if w := v.GetStringBytes("wiki"); len(w) > 0 {
		f.wiki = text(w)
	}
	f.wiki = event.Token(f.wiki)
	f.typ = eventType(v.GetStringBytes("type"))
	return f, nil
}

// eventType returns the subject token of the event type t, without allocating for
// the known types.
func eventType(t []byte) string {
	switch string(t) {
	case "":
		return "unknown"
	case event.TypeEdit:
		return event.TypeEdit
	case event.TypeNew:
		return event.TypeNew
	case event.TypeLog:
		return event.TypeLog
	case event.TypeCategorize:
		return event.TypeCategorize
	case event.TypeExternal:
		return event.TypeExternal
	}
	return event.Token(text(t))
}

// text converts b to a string, replacing invalid UTF-8 with U+FFFD as event.Parse
// does.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
