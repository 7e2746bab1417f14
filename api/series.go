package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/projection"
)

// whoNote is the note of a by=who series asked for with a filter its counters do
// not cross.
const whoNote = "the who series cover every wiki, domain and type: the wiki, domain and type filters do not apply to by=who (its counters do not cross them); the bot filter does"

// computeTimeseries builds one point per event-time minute of the window ending at
// as_of, oldest first, from the minute buckets of the cube (of the who counters
// for by=who).
func (s *Server) computeTimeseries(ctx context.Context, q *query) (*apitypes.Timeseries, error) {
	h, err := s.readHead(ctx, false)
	if err != nil {
		return nil, err
	}
	out := &apitypes.Timeseries{Window: q.window, StepSeconds: 60, Namespace: h.Keys.NS, Times: []apitypes.Time{}, Total: []int64{}}
	if q.by != "" {
		out.Series = map[string][]int64{}
	}
	kind, split := projection.KindCube, cubeSplit(q)
	if q.by == byWho {
		kind, split = projection.KindWho, whoSplit(q.bot)
		if q.wiki != "" || q.domain != "" || q.typ != "" {
			out.Note = whoNote
		}
	}
	if h.Meta.AsOf.IsZero() {
		out.Note = noWindowNote
		return out, nil
	}
	out.AsOf = apitypes.At(h.Meta.AsOf)
	last := h.Meta.AsOfMinute()
	n := q.minutes
	hashes, err := s.hgetall(ctx, h, h.Keys.MinuteKeys(kind, last, n))
	if err != nil {
		return nil, err
	}
	out.Times = make([]apitypes.Time, n)
	out.Total = make([]int64, n)
	for i, hm := range hashes {
		out.Times[i] = apitypes.At(time.Unix((last-n+1+int64(i))*60, 0))
		for field, v := range hm {
			g, ok := split(field)
			if !ok {
				continue
			}
			cnt := s.parseCount(v)
			out.Total[i] += cnt
			if out.Series != nil {
				row := out.Series[g]
				if row == nil {
					row = make([]int64, n)
					out.Series[g] = row
				}
				row[i] += cnt
			}
		}
	}
	if out.Series != nil && q.top > 0 && len(out.Series) > q.top {
		out.Series = largest(out.Series, q.top)
	}
	return out, nil
}

// cubeSplit returns the group of a cube field for q's grouping, and false for a
// field q's filters leave out.
func cubeSplit(q *query) func(field string) (string, bool) {
	f := q.filter()
	p := cubeParser{}
	return func(field string) (string, bool) {
		c := p.parse(field)
		if !f.match(c) {
			return "", false
		}
		return groupOf(q.by, c), true
	}
}

// whoSplit returns the group of a who field (the field itself), and false for a
// field the bot filter (-1 any, 0 humans, 1 bots) leaves out.
func whoSplit(bot int8) func(field string) (string, bool) {
	return func(field string) (string, bool) {
		isBot := field == projection.WhoBot
		return field, bot < 0 || isBot == (bot == 1)
	}
}

// largest keeps the top series with the largest sums (ties by key).
func largest(series map[string][]int64, top int) map[string][]int64 {
	sums := make(map[string]int64, len(series))
	for k, row := range series {
		for _, v := range row {
			sums[k] += v
		}
	}
	keep := groupsOf(sums)
	if len(keep) > top {
		keep = keep[:top]
	}
	kept := make(map[string][]int64, len(keep))
	for _, g := range keep {
		kept[g.key] = series[g.key]
	}
	return kept
}

// handleTimeseries serves GET /stats/timeseries.
func (s *Server) handleTimeseries(c *fiber.Ctx) error {
	q, err := parseQuery(c, &timeseriesSpec)
	if err != nil {
		return err
	}
	ctx, cancel := s.redisCtx(c)
	defer cancel()
	out, err := s.computeTimeseries(ctx, &q)
	if err != nil {
		return err
	}
	return s.sendValue(c, out)
}

// sendValue encodes v with encoding/json and sends it.
func (s *Server) sendValue(c *fiber.Ctx, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.sendJSON(c, body, "")
}
