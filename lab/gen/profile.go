// Package gen is wikiflow's load generator: it learns the shape of the Wikimedia
// recentchange feed from the bundled recordings (which wikis, which event types,
// how many bots, which namespaces, how large the payloads are) and produces any
// number of schema-valid, realistic events from it, deterministically for a seed.
//
// The events go to Kafka exactly as ingest would write them (WriteKafka), to an
// NDJSON file (Run), or to the EventStreams emulator through a random-access Source.
// Everything generated is counted in a Truth, the ground truth that end-to-end tests
// and benchmarks compare the pipeline's numbers with.
package gen

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/valyala/fastjson"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
)

// Types lists the event types the generator produces, in the order used by
// WikiStat.Types.
var Types = [4]string{event.TypeEdit, event.TypeNew, event.TypeLog, event.TypeCategorize}

// typeSmoothing is how many pseudo-events of the overall type mix are added to each
// wiki's own counts, so that a wiki seen twice in the recording does not produce
// only the one type it happened to show.
const typeSmoothing = 5

// Profile is what the generator knows about the feed: distributions learned from
// real events. A Profile is read-only once built; Generators share it.
type Profile struct {
	// Source is the number of events the profile was learned from.
	Source int `json:"source"`
	// Wikis holds each wiki with its share of the events, most frequent first.
	Wikis []WikiStat `json:"wikis"`
	// BotShare is the fraction of events flagged bot.
	BotShare float64 `json:"bot_share"`
	// Humans is the mix of user kinds among non-bot events (bots are registered).
	Humans UserKinds `json:"humans"`
	// Namespaces holds, per event type, the namespace distribution.
	Namespaces map[string][]Weighted[int] `json:"namespaces"`
	// LogTypes holds the log_type/log_action pairs of log events.
	LogTypes []Weighted[LogKind] `json:"log_types"`
	// LogWithoutID is the fraction of log events that carry no "id" field.
	LogWithoutID float64 `json:"log_without_id"`
	// Minor is the fraction of edits marked minor.
	Minor float64 `json:"minor"`
	// Patrolled is the fraction of edit and new events that carry "patrolled".
	Patrolled float64 `json:"patrolled"`
	// TitleLen holds observed title lengths in bytes (an empirical distribution).
	TitleLen []int `json:"title_len"`
	// CommentLen holds observed comment lengths in bytes of edit, new and log events.
	CommentLen []int `json:"comment_len"`
	// LengthOld holds observed page sizes before an edit.
	LengthOld []int `json:"length_old"`
	// LengthDelta holds observed size changes of edits (new - old).
	LengthDelta []int `json:"length_delta"`
	// NewLength holds observed sizes of newly created pages.
	NewLength []int `json:"new_length"`
	// Rate is the recorded event rate in events per second, used to space event
	// times when no other rate is given.
	Rate float64 `json:"rate"`

	prepOnce sync.Once
	prepErr  error
	wikiCum  []float64
	wikiTyp  [][4]float64 // cumulative type weights per wiki
	nsCum    [4]cumulative[int]
	logCum   cumulative[LogKind]
	human    [3]float64 // cumulative registered, anonymous, temporary
}

// WikiStat describes one wiki of the profile.
type WikiStat struct {
	// Wiki is the database name, e.g. "enwiki".
	Wiki string `json:"wiki"`
	// Domain is meta.domain and server_name, e.g. "en.wikipedia.org".
	Domain string `json:"domain"`
	// ServerURL is server_url, e.g. "https://en.wikipedia.org".
	ServerURL string `json:"server_url"`
	// Weight is the wiki's share of all events (the weights sum to 1).
	Weight float64 `json:"weight"`
	// Types is the wiki's type mix over Types (edit, new, log, categorize), smoothed
	// towards the overall mix; it sums to 1.
	Types [4]float64 `json:"types"`
}

// UserKinds is a mix of editor kinds; the fractions sum to 1.
type UserKinds struct {
	// Registered is the share of registered accounts.
	Registered float64 `json:"registered"`
	// Anonymous is the share of IP addresses.
	Anonymous float64 `json:"anonymous"`
	// Temporary is the share of temporary accounts ("~2026-12345-67").
	Temporary float64 `json:"temporary"`
}

// LogKind is a log event's log_type and log_action.
type LogKind struct {
	// Type is log_type, e.g. "delete".
	Type string `json:"type"`
	// Action is log_action, e.g. "delete".
	Action string `json:"action"`
}

// Weighted is a value with its share of a distribution.
type Weighted[T any] struct {
	// Value is the value.
	Value T `json:"value"`
	// Weight is its share; the weights of a distribution sum to 1.
	Weight float64 `json:"weight"`
}

type cumulative[T any] struct {
	vals []T
	cum  []float64
}

func newCumulative[T any](ws []Weighted[T]) cumulative[T] {
	c := cumulative[T]{vals: make([]T, len(ws)), cum: make([]float64, len(ws))}
	total := 0.0
	for i, w := range ws {
		total += w.Weight
		c.vals[i] = w.Value
		c.cum[i] = total
	}
	for i := range c.cum {
		c.cum[i] /= total
	}
	return c
}

// pick returns the value whose cumulative share first exceeds u in [0,1).
func (c *cumulative[T]) pick(u float64) T {
	return c.vals[searchCum(c.cum, u)]
}

func searchCum(cum []float64, u float64) int {
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] > u {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

func typeIndex(t string) int {
	for i, s := range Types {
		if s == t {
			return i
		}
	}
	return -1
}

// TypeShares returns the expected overall share of each event type: the wiki
// weights applied to each wiki's type mix.
func (p *Profile) TypeShares() map[string]float64 {
	out := make(map[string]float64, len(Types))
	for _, w := range p.Wikis {
		for i, s := range w.Types {
			out[Types[i]] += w.Weight * s
		}
	}
	return out
}

// ErrNoEvents is returned by LearnProfile when no usable event was given.
var ErrNoEvents = errors.New("no usable events to learn a profile from")

type wikiAcc struct {
	domain, server string
	n              int
	types          [4]int
}

// LearnProfile learns a Profile from recorded events. Canaries, events that
// event.Parse rejects and events of other types than Types are skipped.
func LearnProfile(events []recording.Event) (*Profile, error) {
	l := learner{p: &Profile{}, wikis: map[string]*wikiAcc{}, ns: [4]map[int]int{{}, {}, {}, {}}, logs: map[LogKind]int{}}
	var par fastjson.Parser
	for _, re := range events {
		ev, err := event.Parse(re.Data)
		if err != nil {
			continue
		}
		ti := typeIndex(ev.Type)
		if ti < 0 {
			continue
		}
		v, err := par.ParseBytes(re.Data)
		if err != nil {
			continue
		}
		l.add(&ev, ti, v)
	}
	if l.p.Source == 0 {
		return nil, ErrNoEvents
	}
	p := l.profile()
	p.Rate = recordedRate(events)
	if err := p.Check(); err != nil {
		return nil, err
	}
	return p, nil
}

// learner counts what LearnProfile learns, event by event.
type learner struct {
	p         *Profile // Source and the length samples are filled as events come
	wikis     map[string]*wikiAcc
	typeCount [4]int
	ns        [4]map[int]int
	logs      map[LogKind]int
	kinds     [3]int // of human users: registered, anonymous, temporary

	bots, humans, logN, logNoID, edits, minors, editNew, patrolled int
}

// add counts ev, of type Types[ti], whose JSON is v.
func (l *learner) add(ev *event.Event, ti int, v *fastjson.Value) {
	p := l.p
	p.Source++
	l.typeCount[ti]++
	w := l.wikis[ev.Wiki]
	if w == nil {
		server := string(v.GetStringBytes("server_url"))
		if server == "" {
			server = "https://" + ev.Domain
		}
		w = &wikiAcc{domain: ev.Domain, server: server}
		l.wikis[ev.Wiki] = w
	}
	w.n++
	w.types[ti]++
	l.ns[ti][ev.Namespace]++
	if ev.Bot {
		l.bots++
	} else {
		l.humans++
		switch ev.EditorKind() {
		case event.EditorRegistered:
			l.kinds[0]++
		case event.EditorAnonymous:
			l.kinds[1]++
		default:
			l.kinds[2]++
		}
	}
	p.TitleLen = append(p.TitleLen, len(ev.Title))
	if ev.Type != event.TypeCategorize {
		p.CommentLen = append(p.CommentLen, len(v.GetStringBytes("comment")))
	}
	l.addByType(ev, v)
}

// addByType counts what only some types have: minor and patrolled flags,
// lengths, log kinds and log events without an id.
func (l *learner) addByType(ev *event.Event, v *fastjson.Value) {
	p := l.p
	switch ev.Type {
	case event.TypeEdit:
		l.edits++
		l.editNew++
		if ev.Minor {
			l.minors++
		}
		if v.Exists("patrolled") {
			l.patrolled++
		}
		if ev.HasLength {
			p.LengthOld = append(p.LengthOld, ev.LengthOld)
			p.LengthDelta = append(p.LengthDelta, ev.LengthNew-ev.LengthOld)
		}
	case event.TypeNew:
		l.editNew++
		if v.Exists("patrolled") {
			l.patrolled++
		}
		if ev.HasLength {
			p.NewLength = append(p.NewLength, ev.LengthNew)
		}
	case event.TypeLog:
		l.logN++
		if !v.Exists("id") {
			l.logNoID++
		}
		k := LogKind{Type: string(v.GetStringBytes("log_type")), Action: string(v.GetStringBytes("log_action"))}
		if k.Type != "" && k.Action != "" {
			l.logs[k]++
		}
	}
}

// profile turns the counts into shares and weights; at least one event was
// counted. The rate is left to the caller.
func (l *learner) profile() *Profile {
	p := l.p
	n := float64(p.Source)
	p.Namespaces = map[string][]Weighted[int]{}
	p.BotShare = float64(l.bots) / n
	if l.humans > 0 {
		h := float64(l.humans)
		p.Humans = UserKinds{Registered: float64(l.kinds[0]) / h, Anonymous: float64(l.kinds[1]) / h, Temporary: float64(l.kinds[2]) / h}
	} else {
		p.Humans = UserKinds{Registered: 1}
	}
	p.Minor = ratio(l.minors, l.edits)
	p.Patrolled = ratio(l.patrolled, l.editNew)
	p.LogWithoutID = ratio(l.logNoID, l.logN)
	for ti, m := range l.ns {
		p.Namespaces[Types[ti]] = sortedWeights(m, func(a, b int) bool { return a < b })
	}
	p.LogTypes = sortedWeights(l.logs, func(a, b LogKind) bool {
		return a.Type+"/"+a.Action < b.Type+"/"+b.Action
	})
	p.Wikis = l.wikiStats(n)
	return p
}

// wikiStats returns each wiki's weight and smoothed type mix, most frequent
// first; n is the number of events counted.
func (l *learner) wikiStats(n float64) []WikiStat {
	out := make([]WikiStat, 0, len(l.wikis))
	for name, w := range l.wikis {
		ws := WikiStat{Wiki: name, Domain: w.domain, ServerURL: w.server, Weight: float64(w.n) / n}
		denom := float64(w.n) + typeSmoothing
		for i := range ws.Types {
			ws.Types[i] = (float64(w.types[i]) + typeSmoothing*float64(l.typeCount[i])/n) / denom
		}
		out = append(out, ws)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Weight != out[j].Weight {
			return out[i].Weight > out[j].Weight
		}
		return out[i].Wiki < out[j].Wiki
	})
	return out
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// sortedWeights turns counts into a deterministic, normalised weight list.
func sortedWeights[K comparable](m map[K]int, less func(a, b K) bool) []Weighted[K] {
	total := 0
	for _, c := range m {
		total += c
	}
	out := make([]Weighted[K], 0, len(m))
	for k, c := range m {
		out = append(out, Weighted[K]{Value: k, Weight: float64(c) / float64(total)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Weight != out[j].Weight {
			return out[i].Weight > out[j].Weight
		}
		return less(out[i].Value, out[j].Value)
	})
	return out
}

// recordedRate is the average event rate of the recording (events over the span of
// their arrival offsets), or 50 events/s when the offsets carry no time.
func recordedRate(events []recording.Event) float64 {
	if len(events) < 2 {
		return 50
	}
	span := events[len(events)-1].Offset - events[0].Offset
	if span <= 0 {
		return 50
	}
	return float64(len(events)-1) / span.Seconds()
}

// Check validates the profile, fills defaults for what it lacks (namespaces, log
// types, rate) and builds its sampling tables; it runs once per profile. Profiles
// from LearnProfile are checked already; a profile built by hand or decoded from
// JSON should be checked before New, which panics on an invalid profile.
func (p *Profile) Check() error {
	p.prepOnce.Do(func() { p.prepErr = p.prepare() })
	return p.prepErr
}

func (p *Profile) prepare() error {
	var errs []error
	if len(p.Wikis) == 0 {
		errs = append(errs, errors.New("profile has no wikis"))
	}
	for _, w := range p.Wikis {
		if w.Wiki == "" || w.Domain == "" {
			errs = append(errs, fmt.Errorf("profile wiki %q/%q: wiki and domain must be set", w.Wiki, w.Domain))
		}
		if strings.ContainsAny(w.Domain+w.Wiki+w.ServerURL, "\"\\") {
			errs = append(errs, fmt.Errorf("profile wiki %q: quote or backslash in names", w.Wiki))
		}
	}
	if p.Namespaces == nil {
		p.Namespaces = map[string][]Weighted[int]{}
	}
	for _, t := range Types {
		if len(p.Namespaces[t]) == 0 {
			p.Namespaces[t] = []Weighted[int]{{Value: defaultNamespace(t), Weight: 1}}
		}
	}
	if len(p.LogTypes) == 0 {
		p.LogTypes = []Weighted[LogKind]{{Value: LogKind{Type: "delete", Action: "delete"}, Weight: 1}}
	}
	if p.Rate <= 0 {
		p.Rate = 50
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.wikiCum = make([]float64, len(p.Wikis))
	p.wikiTyp = make([][4]float64, len(p.Wikis))
	total := 0.0
	for _, w := range p.Wikis {
		total += w.Weight
	}
	acc := 0.0
	for i, w := range p.Wikis {
		acc += w.Weight
		p.wikiCum[i] = acc / total
		tt := 0.0
		for _, s := range w.Types {
			tt += s
		}
		c := 0.0
		for j, s := range w.Types {
			c += s
			if tt > 0 {
				p.wikiTyp[i][j] = c / tt
			} else {
				p.wikiTyp[i][j] = float64(j+1) / 4
			}
		}
	}
	for ti, t := range Types {
		p.nsCum[ti] = newCumulative(p.Namespaces[t])
	}
	p.logCum = newCumulative(p.LogTypes)
	h := p.Humans
	s := h.Registered + h.Anonymous + h.Temporary
	if s <= 0 {
		h, s = UserKinds{Registered: 1}, 1
	}
	p.human = [3]float64{h.Registered / s, (h.Registered + h.Anonymous) / s, 1}
	return nil
}

func defaultNamespace(t string) int {
	if t == event.TypeCategorize {
		return 14
	}
	return 0
}

var (
	defaultOnce    sync.Once
	defaultProfile *Profile
)

// DefaultProfile returns the profile learned from the bundled recording, computed
// once. It must not be modified.
func DefaultProfile() *Profile {
	defaultOnce.Do(func() {
		p, err := LearnProfile(recording.Events())
		if err != nil {
			panic(fmt.Sprintf("gen: the bundled recording yields no profile: %v", err))
		}
		defaultProfile = p
	})
	return defaultProfile
}
