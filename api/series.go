package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// timeseriesBody is the body of /stats/timeseries.
type timeseriesBody struct {
	Window      string              `json:"window"`
	StepSeconds int                 `json:"step_seconds"`
	AsOf        *string             `json:"as_of"`
	Namespace   string              `json:"namespace"`
	Times       []string            `json:"times"`
	Total       []int64             `json:"total"`
	Series      *map[string][]int64 `json:"series,omitempty"`
	Note        string              `json:"note,omitempty"`
}

// computeTimeseries builds one point per event-time minute of the window ending at
// as_of, oldest first, from the minute buckets of the cube.
func (s *Server) computeTimeseries(ctx context.Context, q *query) (*timeseriesBody, error) {
	h, _, err := s.readHead(ctx, false)
	if err != nil {
		return nil, err
	}
	out := &timeseriesBody{Window: q.window, StepSeconds: 60, Namespace: h.keys.NS, Times: []string{}, Total: []int64{}}
	var series map[string][]int64
	if q.by != "" {
		series = map[string][]int64{}
		out.Series = &series
	}
	if !h.meta.hasAsOf {
		out.Note = "the projection has applied no event yet, so no window has an end"
		return out, nil
	}
	asOf := formatTimeMs(h.meta.asOfMs)
	out.AsOf = &asOf
	last := h.meta.asOfMinute()
	n := q.minutes
	hashes, err := s.hgetall(ctx, minuteKeys(h.keys, projection.KindCube, last, n))
	if err != nil {
		return nil, err
	}
	out.Times = make([]string, n)
	out.Total = make([]int64, n)
	f := q.filter()
	p := cubeParser{}
	for i, hm := range hashes {
		out.Times[i] = time.Unix((last-n+1+int64(i))*60, 0).UTC().Format(time.RFC3339)
		for field, v := range hm {
			c := p.parse(field)
			if !f.match(c) {
				continue
			}
			cnt := s.parseCount(v)
			out.Total[i] += cnt
			if series != nil {
				g := groupOf(q.by, c)
				row := series[g]
				if row == nil {
					row = make([]int64, n)
					series[g] = row
				}
				row[i] += cnt
			}
		}
	}
	if series != nil && q.top > 0 && len(series) > q.top {
		sums := make(map[string]int64, len(series))
		for k, row := range series {
			for _, v := range row {
				sums[k] += v
			}
		}
		keep := groupsOf(sums)
		if len(keep) > q.top {
			keep = keep[:q.top]
		}
		kept := make(map[string][]int64, len(keep))
		for _, g := range keep {
			kept[g.key] = series[g.key]
		}
		series = kept
		out.Series = &series
	}
	return out, nil
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
