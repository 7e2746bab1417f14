package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// eventStreamRoute is the path of the live events: the one Wikimedia EventStreams uses.
const eventStreamRoute = "/v2/stream/recentchange"

// Bounds of the event stream's parameters.
const (
	// maxListValues bounds the entries of one comma-separated filter.
	maxListValues = 50
	// maxUserLen bounds a user name, in characters (MediaWiki allows 255 bytes).
	maxUserLen = 255
	// maxSinceMs is the last millisecond of the year 9999.
	maxSinceMs = 253402300799999
	// headerLastEventID is the header an EventSource client resumes with.
	headerLastEventID = "Last-Event-ID"
)

// eventStreamSpec lists the query parameters of /v2/stream/recentchange.
var eventStreamSpec = paramSpec{
	route: eventStreamRoute,
	names: []string{"since", "wiki", "domain", "type", "bot", "namespace", "user"},
}

// eventFilter selects the events one client receives. Wikis and types become
// JetStream subject filters; every field filter is then checked on the fields
// internal/event extracts.
type eventFilter struct {
	wikis      []string
	domains    []string
	types      []string
	bot        int8 // -1 = any, 0 = humans, 1 = bots
	namespaces []int
	user       string
	hasUser    bool
}

// fields reports whether matching needs the event's fields (and not only its subject).
func (f *eventFilter) fields() bool {
	return len(f.wikis) > 0 || len(f.domains) > 0 || f.bot >= 0 || len(f.namespaces) > 0 || f.hasUser
}

// match reports whether ev passes every filter.
func (f *eventFilter) match(ev *event.Event) bool {
	switch {
	case len(f.wikis) > 0 && !contains(f.wikis, ev.Wiki),
		len(f.domains) > 0 && !contains(f.domains, ev.Domain),
		len(f.types) > 0 && !contains(f.types, ev.Type),
		f.bot >= 0 && ev.Bot != (f.bot == 1),
		f.hasUser && ev.User != f.user:
		return false
	}
	if len(f.namespaces) == 0 {
		return true
	}
	for _, n := range f.namespaces {
		if n == ev.Namespace {
			return true
		}
	}
	return false
}

// subjects returns the JetStream filter subjects of the wiki and type filters.
func (f *eventFilter) subjects() []string {
	if len(f.wikis) == 0 && len(f.types) == 0 {
		return []string{wire.SubjectAll}
	}
	wikis, types := []string{"*"}, []string{"*"}
	if len(f.wikis) > 0 {
		wikis = wikis[:0]
		for _, w := range f.wikis {
			wikis = appendNew(wikis, event.Token(w))
		}
	}
	if len(f.types) > 0 {
		types = f.types
	}
	out := make([]string, 0, len(wikis)*len(types))
	for _, w := range wikis {
		for _, t := range types {
			out = append(out, wire.SubjectPrefix+"."+w+"."+t)
		}
	}
	return out
}

// eventRequest is a validated request for the event stream.
type eventRequest struct {
	filter eventFilter
	// since is the ?since= time (used only without Last-Event-ID).
	since    time.Time
	hasSince bool
	// resume is the stream sequence of the last event the client received.
	resume    uint64
	hasResume bool
}

// parseEventRequest validates the query string and the Last-Event-ID header.
// Unknown and repeated parameters are rejected like on every other route.
func parseEventRequest(c *fiber.Ctx, stream string) (eventRequest, error) {
	r := eventRequest{filter: eventFilter{bot: -1}}
	if err := visitParams(c, &eventStreamSpec, r.set); err != nil {
		return r, err
	}
	if id := c.Get(headerLastEventID); id != "" {
		seq, err := parseEventID(id, stream)
		if err != nil {
			return r, err
		}
		r.resume, r.hasResume = seq, true
	}
	return r, nil
}

// set applies one parameter.
func (r *eventRequest) set(name, val string) error {
	var err error
	f := &r.filter
	switch name {
	case "since":
		r.since, err = parseSince(val)
		r.hasSince = err == nil
	case "wiki", "domain":
		var list []string
		if list, err = splitList(name, val); err == nil {
			for _, v := range list {
				if err = checkFilter(name, v); err != nil {
					break
				}
			}
		}
		if name == "wiki" {
			f.wikis = list
		} else {
			f.domains = list
		}
	case "type":
		if f.types, err = splitList(name, val); err == nil {
			for _, t := range f.types {
				if !contains(eventTypes, t) {
					return badParam(name, "type must be one or more of %s, separated by commas; got %q", strings.Join(eventTypes, ", "), t)
				}
			}
		}
	case "bot":
		var bot int8
		if bot, err = parseBot(val); err == nil {
			f.bot = bot
		}
	case "namespace":
		f.namespaces, err = parseNamespaces(val)
	case "user":
		f.user, f.hasUser, err = val, true, checkUser(val)
	}
	return err
}

// splitList splits a comma-separated filter, dropping repeated entries.
func splitList(name, val string) ([]string, error) {
	parts := strings.Split(val, ",")
	if len(parts) > maxListValues {
		return nil, badParam(name, "%s lists %d values; at most %d", name, len(parts), maxListValues)
	}
	var out []string
	for _, p := range parts {
		if p == "" {
			return nil, badParam(name, "%s has an empty value (%q); separate values by single commas", name, val)
		}
		out = appendNew(out, p)
	}
	return out, nil
}

// parseNamespaces reads a comma-separated list of namespace numbers.
func parseNamespaces(val string) ([]int, error) {
	list, err := splitList("namespace", val)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(list))
	for _, v := range list {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, badParam("namespace", "namespace must be integers (such as 0 or 0,1,-1) separated by commas; got %q", v)
		}
		out = append(out, int(n))
	}
	return out, nil
}

// checkUser rejects values that cannot be a MediaWiki user name or IP address.
func checkUser(val string) error {
	switch {
	case val == "":
		return badParam("user", "user must not be empty")
	case !utf8.ValidString(val):
		return badParam("user", "user is not valid UTF-8")
	case utf8.RuneCountInString(val) > maxUserLen:
		return badParam("user", "user is longer than %d characters", maxUserLen)
	}
	for _, r := range val {
		if r < ' ' || r == 0x7f {
			return badParam("user", "user %q holds a control character", val)
		}
	}
	return nil
}

// parseSince reads ?since= like Wikimedia: Unix milliseconds or an ISO-8601 time
// (without a zone, UTC).
func parseSince(val string) (time.Time, error) {
	if ms, err := strconv.ParseInt(val, 10, 64); err == nil {
		if ms < 0 || ms > maxSinceMs {
			return time.Time{}, badParam("since", "since %q: milliseconds must be from 0 to %d", val, int64(maxSinceMs))
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, val); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badParam("since", "since must be Unix milliseconds or an ISO-8601 time such as 2026-01-02T15:04:05Z; got %q", val)
}

// eventID is one entry of the id array, in Wikimedia's layout.
type eventID struct {
	Topic     string `json:"topic"`
	Partition *int   `json:"partition"`
	Offset    *int64 `json:"offset"`
}

// parseEventID reads a Last-Event-ID sent back by a client: the JSON array of
// one position this endpoint puts in its ids. It returns the stream sequence of
// that event, or a 409 unknown_position for any other id (of another stream, or
// of Wikimedia's service).
func parseEventID(id, stream string) (uint64, error) {
	var entries []eventID
	if err := json.Unmarshal([]byte(id), &entries); err == nil && len(entries) == 1 {
		e := entries[0]
		if e.Topic == stream && e.Offset != nil && *e.Offset >= 0 && e.Partition != nil && *e.Partition == 0 {
			return uint64(*e.Offset), nil
		}
	}
	if len(id) > 200 {
		id = id[:200] + "…"
	}
	return 0, &apiError{Status: fiber.StatusConflict, Code: codeUnknownPosition, Parameter: headerLastEventID,
		Message: fmt.Sprintf("Last-Event-ID %q names no position in stream %s; send back an id this endpoint sent, such as %s, or none to start live",
			id, stream, string(appendEventID(nil, stream, 42)))}
}

// appendEventID appends the SSE id of the event at seq: Wikimedia's JSON array
// of topic-partition positions, with the stream as topic and its sequence as offset.
func appendEventID(b []byte, stream string, seq uint64) []byte {
	b = append(b, `[{"topic":`...)
	b = appendString(b, stream)
	b = append(b, `,"partition":0,"offset":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, "}]"...)
}

// appendNew appends s unless list holds it.
func appendNew(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}
