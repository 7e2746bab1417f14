package event

import (
	"fmt"
	"time"

	"github.com/valyala/fastjson"
)

// Head is the part of an event that routes and files it: meta.id, meta.domain,
// meta.dt, wiki and type. It is all the bridge decodes of an event, and Parse
// decodes an Event's copies of these fields with the same code, so the subject an
// event is filed under and the domain it is counted for cannot disagree.
type Head struct {
	// ID is meta.id.
	ID string
	// Domain is meta.domain.
	Domain string
	// Time is meta.dt, in UTC.
	Time time.Time
	// Wiki is the wiki database name, or Domain when the event has none.
	Wiki string
	// Type is the event type, or "unknown" when the event has none.
	Type string
}

// Subject returns the NATS subject of the event under prefix:
// "<prefix>.<wiki>.<type>", with both tokens sanitised.
func (h *Head) Subject(prefix string) string {
	return subject(prefix, h.Wiki, h.Type)
}

// ParseHead extracts only the Head of raw recentchange JSON, under Parse's rules:
// the same size limit (MaxSize), the same errors wrapping ErrCanary, ErrTooLarge or
// ErrInvalid, the same fallbacks and the same replacement of invalid UTF-8. It is
// the fast path for hops that need nothing else.
func ParseHead(raw []byte) (Head, error) {
	var h Head
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := object(p, raw, MaxSize)
	if err == nil {
		err = h.decode(v)
	}
	return h, err
}

// object parses raw, at most limit bytes (0: no limit), with p and returns it as a
// JSON object. The value lives in p until p parses again.
func object(p *fastjson.Parser, raw []byte, limit int) (*fastjson.Value, error) {
	if limit > 0 && len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), limit)
	}
	v, err := p.ParseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	return v, nil
}

// decode fills h from the event object v. The canary check comes before the
// required fields, which canary events lack.
func (h *Head) decode(v *fastjson.Value) error {
	meta := v.Get("meta")
	if meta == nil || meta.Type() != fastjson.TypeObject {
		return fmt.Errorf("%w: no meta object", ErrInvalid)
	}
	h.Domain = istr(meta, "domain")
	if h.Domain == CanaryDomain {
		return ErrCanary
	}
	h.ID = str(meta, "id")
	if h.ID == "" {
		return fmt.Errorf("%w: no meta.id", ErrInvalid)
	}
	if h.Domain == "" {
		return fmt.Errorf("%w: no meta.domain", ErrInvalid)
	}
	dt := meta.GetStringBytes("dt")
	if len(dt) == 0 {
		return fmt.Errorf("%w: no meta.dt", ErrInvalid)
	}
	t, err := parseTime(dt)
	if err != nil {
		return fmt.Errorf("%w: meta.dt %q: %v", ErrInvalid, dt, err)
	}
	h.Time = t
	h.Wiki = istr(v, "wiki")
	if h.Wiki == "" {
		h.Wiki = h.Domain
	}
	h.Type = eventType(v.GetStringBytes("type"))
	return nil
}

// eventType returns the event type t as a string, without allocating for the
// known types, and "unknown" for none.
func eventType(t []byte) string {
	switch string(t) {
	case "":
		return "unknown"
	case TypeEdit:
		return TypeEdit
	case TypeNew:
		return TypeNew
	case TypeLog:
		return TypeLog
	case TypeCategorize:
		return TypeCategorize
	case TypeExternal:
		return TypeExternal
	}
	return internString(t)
}

func parseTime(b []byte) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
