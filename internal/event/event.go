// Package event is wikiflow's model of one Wikimedia recentchange event: the few
// fields that the pipeline routes, counts and shows, extracted once from the raw
// JSON without decoding the rest. The raw bytes stay the source of truth; an Event
// only points the stages at what they need.
package event

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// MaxSize is the default upper bound on the size of one raw event. Real events are
// 0.8–3 KB; anything far larger is rejected before parsing (and dead-lettered by
// ingest) rather than allowed to exhaust memory.
const MaxSize = 1 << 20

// Known event types of the recentchange stream. Other values are kept as they come.
const (
	TypeEdit       = "edit"
	TypeNew        = "new"
	TypeLog        = "log"
	TypeCategorize = "categorize"
	TypeExternal   = "external"
)

// Editor kinds, derived from the user name.
const (
	EditorRegistered = "registered"
	EditorAnonymous  = "anonymous"
	EditorTemporary  = "temporary"
)

// CanaryDomain is the meta.domain of Wikimedia's hourly canary events, which are not
// edits and must be dropped before strict parsing.
const CanaryDomain = "canary"

// Sentinel errors returned (wrapped) by Parse.
var (
	// ErrCanary marks a canary event: valid, but not an edit, and never counted.
	ErrCanary = errors.New("canary event")
	// ErrTooLarge marks an event above the size limit.
	ErrTooLarge = errors.New("event too large")
	// ErrInvalid marks bytes that are not a usable recentchange event.
	ErrInvalid = errors.New("invalid event")
)

// Event holds the fields of one recentchange event that wikiflow uses. Strings are
// copies, so an Event may outlive the buffer it was parsed from.
type Event struct {
	// ID is meta.id, the event's unique id, used for deduplication at every hop.
	ID string
	// Domain is meta.domain, e.g. "en.wikipedia.org": the key of the /stats counts.
	Domain string
	// Time is meta.dt, the event time, used for every time-bucketed count.
	Time time.Time
	// Wiki is the wiki database name, e.g. "enwiki" (falls back to Domain when absent).
	Wiki string
	// Type is edit, new, log, categorize or external.
	Type string
	// Namespace is the page namespace (0 for articles).
	Namespace int
	// Title is the page title.
	Title string
	// User is the user name or IP address; empty when the event has none.
	User string
	// Bot reports whether the change was flagged as made by a bot.
	Bot bool
	// Minor reports whether the edit was marked minor.
	Minor bool
	// HasLength reports whether LengthOld and LengthNew were present.
	HasLength bool
	// LengthOld and LengthNew are the page sizes in bytes before and after the change.
	LengthOld, LengthNew int
}

// Delta returns the change in page size in bytes (0 when the event carries no length).
func (e *Event) Delta() int {
	if !e.HasLength {
		return 0
	}
	return e.LengthNew - e.LengthOld
}

// EditorKind classifies the user as registered, anonymous (an IP address) or
// temporary (MediaWiki temporary accounts, whose names start with "~").
func (e *Event) EditorKind() string {
	switch {
	case e.User == "":
		return EditorAnonymous
	case strings.HasPrefix(e.User, "~"):
		return EditorTemporary
	case looksLikeIP(e.User) && net.ParseIP(e.User) != nil:
		return EditorAnonymous
	default:
		return EditorRegistered
	}
}

// Subject returns the NATS subject of the event under prefix:
// "<prefix>.<wiki>.<type>", with both tokens sanitised.
func (e *Event) Subject(prefix string) string {
	return subject(prefix, e.Wiki, e.Type)
}

func subject(prefix, wiki, typ string) string {
	return prefix + "." + Token(wiki) + "." + Token(typ)
}

// AppendSubject appends to b the subject Subject gives under prefix for an
// event of wiki and typ, for hops that write it into a buffer of their own.
func AppendSubject(b []byte, prefix, wiki, typ string) []byte {
	b = append(b, prefix...)
	b = append(b, '.')
	b = append(b, Token(wiki)...)
	b = append(b, '.')
	return append(b, Token(typ)...)
}

// ValidSubject reports whether s is a subject that Subject could return under
// prefix: the prefix, a dot, and two non-empty tokens of the characters Token
// keeps, separated by a dot. A hop that takes a subject from elsewhere (a Kafka
// header) checks it with ValidSubject before filing an event under it.
func ValidSubject(prefix string, s []byte) bool {
	if len(s) <= len(prefix)+1 || string(s[:len(prefix)]) != prefix || s[len(prefix)] != '.' {
		return false
	}
	tokens, start := 0, len(prefix)+1
	for i := start; i <= len(s); i++ {
		if i < len(s) && tokenByte(s[i]) {
			continue
		}
		if i == start || (i < len(s) && s[i] != '.') {
			return false
		}
		tokens++
		start = i + 1
	}
	return tokens == 2
}

// Token makes s safe as one NATS subject token: characters other than ASCII letters,
// digits, '-' and '_' become '_', and an empty string becomes "unknown".
func Token(s string) string {
	if s == "" {
		return "unknown"
	}
	ok := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i := range b {
		if !tokenByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

// looksLikeIP reports whether s holds only the characters of an IPv4 or IPv6
// address, a cheap test before parsing it.
func looksLikeIP(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':') {
			return false
		}
	}
	return len(s) >= 2
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

var parsers fastjson.ParserPool

// Parse extracts an Event from raw recentchange JSON. It returns an error wrapping
// ErrCanary for canary events, ErrTooLarge above MaxSize, and ErrInvalid (with the
// reason) for anything that is not a usable event: bad JSON, a missing meta.id,
// meta.domain or meta.dt, or a meta.dt that is not RFC 3339.
func Parse(raw []byte) (Event, error) {
	return ParseLimit(raw, MaxSize)
}

// ParseLimit is Parse with an explicit size limit (0 means no limit).
func ParseLimit(raw []byte, limit int) (Event, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := object(p, raw, limit)
	var h Head
	if err == nil {
		err = h.decode(v)
	}
	e := Event{ID: h.ID, Domain: h.Domain, Time: h.Time, Wiki: h.Wiki, Type: h.Type}
	if err != nil {
		return e, err
	}
	e.Namespace = v.GetInt("namespace")
	e.Title = str(v, "title")
	e.User = str(v, "user")
	e.Bot = v.GetBool("bot")
	e.Minor = v.GetBool("minor")
	if l := v.Get("length"); l != nil && l.Type() == fastjson.TypeObject {
		e.HasLength = true
		e.LengthOld = l.GetInt("old")
		e.LengthNew = l.GetInt("new")
	}
	return e, nil
}

// MetaID extracts only meta.id and meta.domain from raw JSON, for hops that need
// nothing else. It reports ErrCanary and ErrInvalid like Parse.
func MetaID(raw []byte) (id, domain string, err error) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := object(p, raw, 0)
	if err != nil {
		return "", "", err
	}
	domain = istr(v, "meta", "domain")
	if domain == CanaryDomain {
		return "", domain, ErrCanary
	}
	id = str(v, "meta", "id")
	if id == "" {
		return "", domain, fmt.Errorf("%w: no meta.id", ErrInvalid)
	}
	return id, domain, nil
}

func str(v *fastjson.Value, keys ...string) string {
	return text(v.GetStringBytes(keys...))
}

// text converts b to a string, replacing invalid UTF-8 with U+FFFD as
// encoding/json does, so that every later hop sees valid text.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError) // one replacement per invalid byte, like encoding/json
		} else {
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// istr is str for values that repeat on almost every event (domains, wikis, types):
// they are interned so that millions of events share a few thousand strings.
func istr(v *fastjson.Value, keys ...string) string {
	b := v.GetStringBytes(keys...)
	if len(b) == 0 {
		return ""
	}
	return internString(b)
}

// internString returns a string for b, reusing a shared copy for the small set of
// values that repeat on every event (domains, wikis, types).
func internString(b []byte) string {
	if len(b) > 64 || !utf8.Valid(b) {
		return text(b)
	}
	if s, ok := interned.Load(string(b)); ok {
		return s.(string)
	}
	s := string(b)
	if internCount.Load() < maxInterned {
		if _, loaded := interned.LoadOrStore(s, s); !loaded {
			internCount.Add(1)
		}
	}
	return s
}

var (
	interned    sync.Map
	internCount atomic.Int64
)

const maxInterned = 1 << 14
