package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// windowMinutes maps each window name to its length in minutes (0 = all time).
var windowMinutes = map[string]int64{
	"1m": 1, "5m": 5, "15m": 15, "1h": 60, "24h": 1440, "all": 0,
}

// Event types accepted by the type filter.
var eventTypes = []string{"edit", "new", "log", "categorize", "external"}

// Groupings of /stats.
const (
	byDomain    = "domain"
	byWiki      = "wiki"
	byType      = "type"
	byBot       = "bot"
	byNamespace = "namespace"
	byEditor    = "editor"
	// byWho splits /stats/timeseries into bot, registered, anonymous and
	// temporary: bots together, humans by editor kind (byEditor's kinds count
	// bots among them).
	byWho = "who"
)

// Bounds of the parameters.
const (
	maxTop          = 1000
	maxFilterLen    = 255
	maxIntervalSec  = 60 // interval is whole seconds from 1 to maxIntervalSec
	defaultInterval = time.Second
)

// query holds the validated parameters of one request.
type query struct {
	window   string
	minutes  int64 // window length; 0 = all time
	wiki     string
	domain   string
	typ      string
	bot      int8 // -1 = no filter, 0 = humans, 1 = bots
	by       string
	top      int // 0 = no limit
	interval time.Duration
	empty    bool // no parameter that changes the figures (the fast path of /stats)
}

// filtered reports whether any filter is set.
func (q *query) filtered() bool {
	return q.wiki != "" || q.domain != "" || q.typ != "" || q.bot >= 0
}

// paramSpec says which parameters a route accepts and how.
type paramSpec struct {
	route         string
	names         []string // accepted parameter names, in documentation order
	windows       []string // accepted windows
	defaultWindow string
	groupings     []string // accepted values of by (nil: by not accepted)
	defaultBy     string
	defaultTop    int // default of top (0 = no limit); with topNeedsBy, only when by is set
	topNeedsBy    bool
}

var (
	statsSpec = paramSpec{
		route:         "/stats",
		names:         []string{"window", "wiki", "domain", "type", "bot", "by", "top"},
		windows:       []string{"1m", "5m", "15m", "1h", "24h", "all"},
		defaultWindow: "all",
		groupings:     []string{byDomain, byWiki, byType, byBot, byNamespace, byEditor},
		defaultBy:     byDomain,
	}
	streamSpec = paramSpec{
		route:         "/stats/stream",
		names:         []string{"window", "wiki", "domain", "type", "bot", "by", "top", "interval"},
		windows:       statsSpec.windows,
		defaultWindow: "all",
		groupings:     statsSpec.groupings,
		defaultBy:     byDomain,
	}
	timeseriesSpec = paramSpec{
		route:         "/stats/timeseries",
		names:         []string{"window", "wiki", "domain", "type", "bot", "by", "top"},
		windows:       []string{"1m", "5m", "15m", "1h", "24h"},
		defaultWindow: "1h",
		groupings:     []string{byDomain, byWiki, byType, byBot, byWho},
		defaultTop:    10,
		topNeedsBy:    true,
	}
	topPagesSpec = paramSpec{
		route:         "/stats/top/pages",
		names:         []string{"window", "wiki", "domain", "top"},
		windows:       []string{"1m", "5m", "15m", "1h", "24h"},
		defaultWindow: "1h",
		defaultTop:    10,
	}
	topEditorsSpec = paramSpec{
		route:         "/stats/top/editors",
		names:         topPagesSpec.names,
		windows:       topPagesSpec.windows,
		defaultWindow: "1h",
		defaultTop:    10,
	}
)

// parseQuery validates the query string of c against spec. Unknown and repeated
// parameters are rejected, so that a typo never silently changes the answer.
func parseQuery(c *fiber.Ctx, spec *paramSpec) (query, error) {
	q := query{window: spec.defaultWindow, by: spec.defaultBy, bot: -1, interval: defaultInterval}
	q.minutes = windowMinutes[q.window]
	args := c.Context().QueryArgs()
	q.empty = args.Len() == 0 || (args.Len() == 1 && args.Has("interval") && contains(spec.names, "interval"))
	if args.Len() == 0 {
		if !spec.topNeedsBy {
			q.top = spec.defaultTop
		}
		return q, nil
	}
	topSet := false
	if err := visitParams(c, spec, func(name, val string) error {
		topSet = topSet || name == "top"
		return q.set(spec, name, val)
	}); err != nil {
		return q, err
	}
	if !topSet && (!spec.topNeedsBy || q.by != "") {
		q.top = spec.defaultTop
	}
	if spec.topNeedsBy && q.by == "" {
		q.top = 0
	}
	return q, nil
}

// visitParams calls set for each parameter of c's query string, in order, and
// stops at the first error: a parameter spec does not accept, one given twice,
// or what set returns.
func visitParams(c *fiber.Ctx, spec *paramSpec, set func(name, val string) error) error {
	args := c.Context().QueryArgs()
	seen := make(map[string]bool, args.Len())
	var perr error
	args.VisitAll(func(k, v []byte) {
		if perr != nil {
			return
		}
		name := string(k)
		switch {
		case !contains(spec.names, name):
			perr = badParam(name, "unknown parameter %q; %s accepts %s", name, spec.route, strings.Join(spec.names, ", "))
		case seen[name]:
			perr = badParam(name, "%s given more than once", name)
		default:
			seen[name] = true
			perr = set(name, string(v))
		}
	})
	return perr
}

// set applies one parameter that spec accepts.
func (q *query) set(spec *paramSpec, name, val string) error {
	switch name {
	case "window":
		if !contains(spec.windows, val) {
			return badParam(name, "window must be one of %s; got %q", strings.Join(spec.windows, ", "), val)
		}
		q.window, q.minutes = val, windowMinutes[val]
	case "wiki", "domain":
		if err := checkFilter(name, val); err != nil {
			return err
		}
		if name == "wiki" {
			q.wiki = val
		} else {
			q.domain = val
		}
	case "type":
		if !contains(eventTypes, val) {
			return badParam(name, "type must be one of %s; got %q", strings.Join(eventTypes, ", "), val)
		}
		q.typ = val
	case "bot":
		bot, err := parseBot(val)
		if err != nil {
			return err
		}
		q.bot = bot
	case "by":
		if !contains(spec.groupings, val) {
			return badParam(name, "by must be one of %s; got %q", strings.Join(spec.groupings, ", "), val)
		}
		q.by = val
	case "top":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > maxTop {
			return badParam(name, "top must be an integer from 1 to %d; got %q", maxTop, val)
		}
		q.top = n
	case "interval":
		d, err := parseInterval(val)
		if err != nil {
			return badParam(name, "interval must be whole seconds from 1 to %d, such as 5 or 5s; got %q", maxIntervalSec, val)
		}
		q.interval = d
	}
	return nil
}

// parseBot reads the bot filter: 1 for true (bots), 0 for false (humans).
func parseBot(val string) (int8, error) {
	switch val {
	case "true":
		return 1, nil
	case "false":
		return 0, nil
	}
	return -1, badParam("bot", "bot must be true or false; got %q", val)
}

// parseInterval reads an interval of whole seconds, "N" or "Ns" with N from 1 to
// maxIntervalSec written without a sign or leading zero (the pattern of the
// interval parameter in openapi.json). The digits are checked before any
// conversion, so no value can overflow into the range.
func parseInterval(s string) (time.Duration, error) {
	digits := strings.TrimSuffix(s, "s")
	if len(digits) == 0 || len(digits) > 2 || digits[0] == '0' {
		return 0, errBadInterval
	}
	n := 0
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, errBadInterval
		}
		n = n*10 + int(c-'0')
	}
	if n > maxIntervalSec {
		return 0, errBadInterval
	}
	return time.Duration(n) * time.Second, nil
}

var errBadInterval = fmt.Errorf("not whole seconds from 1 to %d", maxIntervalSec)

// checkFilter rejects filter values that cannot name a wiki or domain: empty,
// longer than maxFilterLen characters, not UTF-8, or holding a space, a control
// character or one of | " \\ * ? [ ] (filterPattern in openapi.json says the same).
func checkFilter(name, val string) error {
	if val == "" {
		return badParam(name, "%s must not be empty", name)
	}
	if !utf8.ValidString(val) {
		return badParam(name, "%s is not valid UTF-8", name)
	}
	if n := utf8.RuneCountInString(val); n > maxFilterLen {
		return badParam(name, "%s is %d characters long, more than %d", name, n, maxFilterLen)
	}
	if i := strings.IndexFunc(val, badFilterRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(val[i:])
		return badParam(name, "%s %q holds %U, a character no %s name has (spaces, control characters and | \" \\ * ? [ ] are refused)", name, val, r, name)
	}
	return nil
}

// badFilterRune reports the characters no wiki or domain name holds.
func badFilterRune(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`|"\*?[]`, r)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// badParam returns a 400 error naming the parameter.
func badParam(param, format string, args ...any) error {
	return &apiError{Status: fiber.StatusBadRequest, Code: codeBadParameter, Parameter: param, Message: fmt.Sprintf(format, args...)}
}
