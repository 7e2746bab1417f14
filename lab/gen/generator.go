package gen

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Fixed values of every generated event, as in the real feed.
const (
	// SchemaURI is the $schema of every event.
	SchemaURI = "/mediawiki/recentchange/1.0.0"
	// Stream is meta.stream of every event.
	Stream = "mediawiki.recentchange"
	// KafkaTopicName is meta.topic of every event (Wikimedia's own Kafka topic).
	KafkaTopicName = "eqiad.mediawiki.recentchange"
)

// DefaultStart is the event time of the first event of a Generator or Source whose
// clock was not set: the start of the bundled recording's consecutive block.
var DefaultStart = time.Date(2026, 5, 5, 11, 17, 40, 0, time.UTC)

// Out-of-order event times: this share of events is dated up to maxJitter earlier
// than its slot, which makes about as many neighbours go backwards as in the real
// feed (~20 %). The "timestamp" field lags meta.dt by up to maxLag.
const (
	jitterShare = 0.2
	maxJitter   = 3 * time.Second
	maxLag      = 3200 * time.Millisecond
)

// Upper bounds that keep generated events in the recorded size range.
const (
	maxTitle   = 180
	maxComment = 400
)

// Info describes the event a Generator produced last, without parsing it.
type Info struct {
	// Index is the event's position in its sequence (0-based).
	Index int
	// Wiki, Domain and Type are the event's wiki, meta.domain and type.
	Wiki, Domain, Type string
	// Bot is the event's bot flag.
	Bot bool
	// Time is meta.dt.
	Time time.Time
	// MetaID is meta.id.
	MetaID [36]byte
}

// Generator produces realistic recentchange events from a Profile. Event i depends
// only on the profile, the seed, the clock and i, so sequences are reproducible and
// any event can be produced on its own (At). A Generator is not safe for concurrent
// use; create one per goroutine.
type Generator struct {
	p       *Profile
	seed    int64
	seedMix uint64
	start   int64 // Unix ns of event 0
	step    float64
	next    int

	pcg  rand.PCG
	r    *rand.Rand
	buf  []byte
	tmp  []byte // title
	com  []byte // comment
	pc   []byte // parsed comment
	link []byte // linked title (categorize)
	url  []byte // title as in URLs
	info Info
}

// New returns a generator of events drawn from p, deterministic for seed. Its
// clock starts at DefaultStart and advances at p.Rate events per second (see
// SetClock). New panics if p fails Check.
func New(p *Profile, seed int64) *Generator {
	if err := p.Check(); err != nil {
		panic("gen.New: invalid profile: " + err.Error())
	}
	g := &Generator{p: p, seed: seed, seedMix: mix64(uint64(seed))}
	g.r = rand.New(&g.pcg)
	g.buf = make([]byte, 0, 4096)
	g.SetClock(DefaultStart, 0)
	return g
}

// SetClock sets the event time of event 0 and the event rate (events per second)
// that spaces the following ones: event i is dated start + i/rate, give or take the
// out-of-order jitter. A rate <= 0 means the profile's recorded rate.
func (g *Generator) SetClock(start time.Time, rate float64) {
	if rate <= 0 {
		rate = g.p.Rate
	}
	g.start = start.UnixNano()
	g.step = float64(time.Second) / rate
}

// Seed returns the generator's seed.
func (g *Generator) Seed() int64 { return g.seed }

// Index returns the index of the event the next call to Next produces.
func (g *Generator) Index() int { return g.next }

// Next returns the next event as one line of JSON (no newline). The slice is reused
// by the next call to Next or At.
func (g *Generator) Next() []byte {
	b := g.At(g.next)
	g.next++
	return b
}

// Last describes the event returned by the latest Next or At.
func (g *Generator) Last() *Info { return &g.info }

// At returns event i of the sequence without moving the position of Next. The
// slice is reused by the next call to Next or At.
//
// Every draw from the event's random source happens in a fixed order (what the
// event is, its time, its texts, then its fields from first to last), so that
// event i stays the same whatever else changes.
func (g *Generator) At(i int) []byte {
	g.pcg.Seed(g.seedMix, mix64(g.seedMix^uint64(i)*0x9e3779b97f4a7c15))
	d := g.draw(i)
	g.info = Info{Index: i, Wiki: d.w.Wiki, Domain: d.w.Domain, Type: Types[d.ti], Bot: d.bot, Time: d.t}
	g.texts(d.ti, d.ns)

	b := g.appendMeta(g.buf[:0], &d)
	b = g.appendEdit(b, &d)
	switch d.ti {
	case 0, 1: // edit, new
		b = g.appendRevision(b, &d)
	case 2: // log
		b = g.appendLog(b, &d)
	case 3: // categorize
		b = appendNotifyURL(b, &d, true)
		b = append(b, '"')
	}
	b = append(b, `,"server_url":"`...)
	b = append(b, d.w.ServerURL...)
	b = append(b, `","server_name":"`...)
	b = append(b, d.w.Domain...)
	b = append(b, `","server_script_path":"/w","wiki":"`...)
	b = append(b, d.w.Wiki...)
	b = append(b, `","parsedcomment":`...)
	b = appendJSONString(b, g.pc)
	b = append(b, '}')
	g.buf = b
	return b
}

// draft is what At drew for one event before writing it.
type draft struct {
	i    int
	w    *WikiStat
	ti   int // index in Types
	ns   int
	bot  bool
	kind int // of user: 0 registered, 1 IP, 2 temporary account
	t    time.Time
	ts   int64 // the "timestamp" field, Unix s

	wikiBase       uint64
	rcid           int64
	revNew, revOld int64 // drawn by appendEdit, after the user
}

// draw picks event i's wiki, type, namespace and user kind, and its times.
func (g *Generator) draw(i int) draft {
	r, p := g.r, g.p
	d := draft{i: i}
	wi := searchCum(p.wikiCum, r.Float64())
	d.w = &p.Wikis[wi]
	d.ti = searchCum(p.wikiTyp[wi][:], r.Float64())
	d.ns = p.nsCum[d.ti].pick(r.Float64())
	d.bot = r.Float64() < p.BotShare
	if !d.bot {
		d.kind = searchCum(p.human[:], r.Float64())
	}

	dt := g.start + int64(float64(i)*g.step)
	if r.Float64() < jitterShare {
		dt -= r.Int64N(int64(maxJitter))
	}
	dt = dt / int64(time.Millisecond) * int64(time.Millisecond)
	d.ts = (dt - r.Int64N(int64(maxLag))) / int64(time.Second)
	d.t = time.Unix(0, dt).UTC()

	d.wikiBase = hashString(d.w.Wiki)
	d.rcid = int64(d.wikiBase%2_000_000_000) + int64(i)
	return d
}

// texts fills the title (g.tmp and g.url), the comment (g.com) and the parsed
// comment (g.pc) of an event of type Types[ti] in namespace ns.
func (g *Generator) texts(ti, ns int) {
	r, p := g.r, g.p
	prefix := namespacePrefix(ns)
	g.tmp = appendWords(append(g.tmp[:0], prefix...), r, words,
		max(3, min(maxTitle, sample(r, p.TitleLen, 30))-len(prefix)))
	g.url = appendTitleURL(g.url[:0], g.tmp)
	g.com, g.pc = g.com[:0], g.pc[:0]
	if ti == 3 {
		g.categorizeComment(r)
	} else {
		g.comment(r, min(maxComment, sample(r, p.CommentLen, 40)))
	}
}

// appendMeta appends the event's opening: $schema, meta (its id is kept in
// g.info) and the optional rc id.
func (g *Generator) appendMeta(b []byte, d *draft) []byte {
	r := g.r
	b = append(b, `{"$schema":"`+SchemaURI+`","meta":{"uri":"`...)
	b = append(b, d.w.ServerURL...)
	b = append(b, "/wiki/"...)
	b = append(b, g.url...)
	b = append(b, `","request_id":"`...)
	b = appendUUID4(b, r)
	b = append(b, `","id":"`...)
	idAt := len(b)
	b = appendUUID4(b, r)
	copy(g.info.MetaID[:], b[idAt:])
	b = append(b, `","dt":"`...)
	b = appendDT(b, d.t)
	b = append(b, `","domain":"`...)
	b = append(b, d.w.Domain...)
	b = append(b, `","stream":"`+Stream+`","topic":"`+KafkaTopicName+`","partition":0,"offset":`...)
	b = strconv.AppendInt(b, 6_000_000_000+int64(g.seedMix%1_000_000_000)+int64(d.i), 10)
	b = append(b, '}')
	if d.ti != 2 || r.Float64() >= g.p.LogWithoutID {
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, d.rcid, 10)
	}
	return b
}

// appendEdit appends the fields every type has, from type to bot, and draws the
// revision ids.
func (g *Generator) appendEdit(b []byte, d *draft) []byte {
	r := g.r
	b = append(b, `,"type":"`...)
	b = append(b, Types[d.ti]...)
	b = append(b, `","namespace":`...)
	b = strconv.AppendInt(b, int64(d.ns), 10)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, g.tmp)
	b = append(b, `,"title_url":"`...)
	b = append(b, d.w.ServerURL...)
	b = append(b, "/wiki/"...)
	b = append(b, g.url...)
	b = append(b, `","comment":`...)
	b = appendJSONString(b, g.com)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, d.ts, 10)
	b = append(b, `,"user":"`...)
	b = g.appendUser(b, d)
	b = append(b, `","bot":`...)
	b = strconv.AppendBool(b, d.bot)

	d.revNew = int64(d.wikiBase>>32%1_000_000_000) + int64(d.i)
	d.revOld = d.revNew - 1 - int64(r.IntN(1_000_000))
	return b
}

// appendUser appends a user name of d's kind, unquoted.
func (g *Generator) appendUser(b []byte, d *draft) []byte {
	r := g.r
	switch d.kind {
	case 0:
		pool := uint64(20000)
		if d.bot {
			pool = 300
		}
		return appendUserName(b, uint64(r.IntN(int(pool)))+pool*7, d.bot)
	case 1:
		return appendIP(b, r)
	}
	b = append(b, '~')
	b = strconv.AppendInt(b, int64(d.t.Year()), 10)
	b = strconv.AppendInt(append(b, '-'), int64(10000+r.IntN(90000)), 10)
	return strconv.AppendInt(append(b, '-'), int64(10+r.IntN(90)), 10)
}

// appendNotifyURL appends the notify_url field, still open: a diff link when diff
// is set, else a link to the new revision.
func appendNotifyURL(b []byte, d *draft, diff bool) []byte {
	b = append(b, `,"notify_url":"`...)
	b = append(b, d.w.ServerURL...)
	if diff {
		b = strconv.AppendInt(append(b, "/w/index.php?diff="...), d.revNew, 10)
		b = strconv.AppendInt(append(b, "&oldid="...), d.revOld, 10)
	} else {
		b = strconv.AppendInt(append(b, "/w/index.php?oldid="...), d.revNew, 10)
	}
	return strconv.AppendInt(append(b, "&rcid="...), d.rcid, 10)
}

// appendRevision appends the fields of an edit or a new page: notify_url, minor,
// patrolled, length and revision.
func (g *Generator) appendRevision(b []byte, d *draft) []byte {
	r, p := g.r, g.p
	edit := d.ti == 0
	b = appendNotifyURL(b, d, edit)
	b = append(b, `","minor":`...)
	b = strconv.AppendBool(b, edit && r.Float64() < p.Minor)
	if r.Float64() < p.Patrolled {
		b = append(b, `,"patrolled":`...)
		b = strconv.AppendBool(b, r.IntN(4) != 0)
	}
	if edit {
		old := sample(r, p.LengthOld, 5000)
		nw := max(0, old+sample(r, p.LengthDelta, 10))
		b = strconv.AppendInt(append(b, `,"length":{"old":`...), int64(old), 10)
		b = strconv.AppendInt(append(b, `,"new":`...), int64(nw), 10)
		b = strconv.AppendInt(append(b, `},"revision":{"old":`...), d.revOld, 10)
		b = strconv.AppendInt(append(b, `,"new":`...), d.revNew, 10)
	} else {
		b = strconv.AppendInt(append(b, `,"length":{"new":`...), int64(sample(r, p.NewLength, 2000)), 10)
		b = strconv.AppendInt(append(b, `},"revision":{"new":`...), d.revNew, 10)
	}
	return append(b, '}')
}

// appendLog appends the fields of a log event.
func (g *Generator) appendLog(b []byte, d *draft) []byte {
	r := g.r
	lk := g.p.logCum.pick(r.Float64())
	b = strconv.AppendInt(append(b, `,"log_id":`...), int64(d.wikiBase>>16%500_000_000)+int64(d.i), 10)
	b = append(b, `,"log_type":`...)
	b = appendJSONString(b, lk.Type)
	b = append(b, `,"log_action":`...)
	b = appendJSONString(b, lk.Action)
	b = append(b, `,"log_params":`...)
	b = g.appendLogParams(b, r, lk.Type, d.t)
	b = append(b, `,"log_action_comment":`...)
	return g.appendLogActionComment(b, lk)
}

// comment fills g.com with an edit summary of about n bytes and g.pc with its
// parsed HTML form: an optional section marker, words, an optional wiki link.
func (g *Generator) comment(r *rand.Rand, n int) {
	if n <= 0 {
		return
	}
	closeSpan := false
	if n > 20 && r.IntN(10) < 3 {
		sect := len(g.com)
		g.com = append(g.com, "/* "...)
		g.com = appendWords(g.com, r, words, 4+r.IntN(16))
		secName := g.com[sect+3:]
		g.pc = append(g.pc, `<span dir="auto"><span class="autocomment"><a href="/wiki/`...)
		g.pc = append(g.pc, g.url...)
		g.pc = append(g.pc, '#')
		g.pc = appendTitleURL(g.pc, secName)
		g.pc = append(g.pc, `" title="`...)
		g.pc = append(g.pc, g.tmp...)
		g.pc = append(g.pc, `">→‎`...)
		g.pc = append(g.pc, secName...)
		g.pc = append(g.pc, `</a>: </span> `...)
		g.com = append(g.com, " */ "...)
		closeSpan = true
	}
	rest := n - len(g.com)
	if rest > 30 && r.IntN(10) < 3 {
		before := len(g.com)
		g.com = appendWords(g.com, r, commentWords, rest/3)
		g.pc = append(g.pc, g.com[before:]...)
		g.com = append(g.com, " [["...)
		lt := len(g.com)
		g.com = appendWords(g.com, r, words, 6+r.IntN(20))
		target := g.com[lt:]
		g.pc = append(g.pc, ` <a href="/wiki/`...)
		g.pc = appendTitleURL(g.pc, target)
		g.pc = append(g.pc, `" title="`...)
		g.pc = append(g.pc, target...)
		g.pc = append(g.pc, `">`...)
		g.pc = append(g.pc, target...)
		g.pc = append(g.pc, "</a>"...)
		g.com = append(g.com, "]]"...)
		rest = n - len(g.com)
		if rest > 0 {
			g.com = append(g.com, ' ')
			g.pc = append(g.pc, ' ')
		}
	}
	if rest > 0 {
		before := len(g.com)
		g.com = appendWords(g.com, r, commentWords, rest)
		g.pc = append(g.pc, g.com[before:]...)
	}
	if closeSpan {
		g.pc = append(g.pc, "</span>"...)
	}
}

// categorizeComment fills the comment of a categorize event: a page added to or
// removed from the category (the title).
func (g *Generator) categorizeComment(r *rand.Rand) {
	g.link = appendWords(g.link[:0], r, words, 8+r.IntN(60))
	action := " added to category"
	if r.IntN(3) == 0 {
		action = " removed from category"
	}
	g.com = append(g.com, "[[:"...)
	g.com = append(g.com, g.link...)
	g.com = append(g.com, "]]"...)
	g.com = append(g.com, action...)
	g.pc = append(g.pc, `<a href="/wiki/`...)
	g.pc = appendTitleURL(g.pc, g.link)
	g.pc = append(g.pc, `" title="`...)
	g.pc = append(g.pc, g.link...)
	g.pc = append(g.pc, `">`...)
	g.pc = append(g.pc, g.link...)
	g.pc = append(g.pc, "</a>"...)
	g.pc = append(g.pc, action...)
}

func (g *Generator) appendLogParams(b []byte, r *rand.Rand, logType string, t time.Time) []byte {
	switch logType {
	case "upload":
		b = append(b, `{"img_sha1":"`...)
		const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"
		for range 31 {
			b = append(b, base36[r.IntN(36)])
		}
		b = append(b, `","img_timestamp":"`...)
		b = t.AppendFormat(b, "20060102150405")
		return append(b, `"}`...)
	case "review":
		b = strconv.AppendInt(append(b, '['), int64(r.IntN(90_000_000)), 10)
		b = strconv.AppendInt(append(b, ','), int64(r.IntN(90_000_000)), 10)
		b = append(b, `,"`...)
		b = t.Add(-time.Duration(r.IntN(86400))*time.Second).AppendFormat(b, "20060102150405")
		return append(b, `"]`...)
	case "block":
		return append(b, `{"duration":"infinite","flags":"nocreate,noautoblock","sitewide":true}`...)
	case "move":
		b = append(b, `{"4::target":`...)
		b = appendJSONString(b, g.tmp)
		return append(b, `,"5::noredir":"0"}`...)
	case "newusers":
		b = strconv.AppendInt(append(b, `{"4::userid":`...), int64(r.IntN(90_000_000)), 10)
		return append(b, '}')
	case "patrol":
		b = strconv.AppendInt(append(b, `{"4::curid":"`...), int64(r.IntN(900_000_000)), 10)
		b = strconv.AppendInt(append(b, `","5::previd":"`...), int64(r.IntN(900_000_000)), 10)
		return append(b, `","6::auto":0}`...)
	default:
		return append(b, "[]"...)
	}
}

func (g *Generator) appendLogActionComment(b []byte, lk LogKind) []byte {
	// Built in g.link (free for log events), then escaped into b.
	s := g.link[:0]
	s = append(s, lk.Action...)
	if strings.HasSuffix(lk.Action, "e") {
		s = append(s, 'd')
	} else {
		s = append(s, "ed"...)
	}
	s = append(s, " &quot;[["...)
	s = append(s, g.tmp...)
	s = append(s, "]]&quot;"...)
	if len(g.com) > 0 {
		s = append(s, ": "...)
		s = append(s, g.com...)
	}
	g.link = s
	return appendJSONString(b, s)
}

// appendDT appends t (UTC) as RFC 3339 with milliseconds, like the feed's meta.dt:
// 2006-01-02T15:04:05.000Z.
func appendDT(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = appendDigits(b, y, 4)
	b = appendDigits(append(b, '-'), int(mo), 2)
	b = appendDigits(append(b, '-'), d, 2)
	b = appendDigits(append(b, 'T'), h, 2)
	b = appendDigits(append(b, ':'), mi, 2)
	b = appendDigits(append(b, ':'), s, 2)
	b = appendDigits(append(b, '.'), t.Nanosecond()/1e6, 3)
	return append(b, 'Z')
}

// appendDigits appends v (>= 0) zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [8]byte
	i := len(buf)
	for v > 0 || i > len(buf)-width {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[i:]...)
}
