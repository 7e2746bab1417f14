package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/projection"
)

// noWindowNote is the note of a windowed answer before the projection has an as_of.
const noWindowNote = "the projection has applied no event yet, so no window has an end"

// topResult is what computeTop finds for either list.
type topResult struct {
	ns   string
	top  projection.Top
	asOf apitypes.Time
	note string
}

// computeTop reads the top q.top members of the window's sorted sets of kind
// (with users set, also the estimated distinct users) through the projection
// reader.
func (s *Server) computeTop(ctx context.Context, q *query, kind projection.Kind, users bool) (*topResult, error) {
	h, err := s.readHead(ctx, false)
	if err != nil {
		return nil, err
	}
	res := &topResult{ns: h.Keys.NS}
	if h.Meta.AsOf.IsZero() {
		res.note = noWindowNote
		return res, nil
	}
	res.asOf = apitypes.At(h.Meta.AsOf)
	res.top, err = s.reader.Top(ctx, h, projection.TopQuery{Kind: kind, Minutes: q.minutes, N: q.top, Wiki: q.wiki, Domain: q.domain, Users: users})
	s.stats.BadCounters.Add(res.top.Bad)
	if err != nil {
		return nil, s.redisErr("read the top list", err)
	}
	if q.minutes > 60 {
		res.note = "windows longer than 1h use hourly buckets: the list covers whole hours, from " + formatTimeMs(res.top.From.UnixMilli()) + " to as_of"
	}
	return res, nil
}

// queryTop parses the query of a top list route (spec) and reads the list of
// kind, with the distinct users when users is set.
func (s *Server) queryTop(c *fiber.Ctx, spec *paramSpec, kind projection.Kind, users bool) (query, *topResult, error) {
	q, err := parseQuery(c, spec)
	if err != nil {
		return q, nil, err
	}
	ctx, cancel := s.redisCtx(c)
	defer cancel()
	r, err := s.computeTop(ctx, &q, kind, users)
	return q, r, err
}

// handleTopPages serves GET /stats/top/pages.
func (s *Server) handleTopPages(c *fiber.Ctx) error {
	q, r, err := s.queryTop(c, &topPagesSpec, projection.KindPages, false)
	if err != nil {
		return err
	}
	out := apitypes.TopPages{Window: q.window, AsOf: r.asOf, From: apitypes.At(r.top.From), Namespace: r.ns, Items: make([]apitypes.PageItem, 0, len(r.top.Members)), Note: r.note}
	for _, m := range r.top.Members {
		out.Items = append(out.Items, apitypes.PageItem{Domain: m.Domain, Title: m.Name, Count: m.Count})
	}
	return s.sendValue(c, out)
}

// handleTopEditors serves GET /stats/top/editors.
func (s *Server) handleTopEditors(c *fiber.Ctx) error {
	q, r, err := s.queryTop(c, &topEditorsSpec, projection.KindEditors, true)
	if err != nil {
		return err
	}
	out := apitypes.TopEditors{Window: q.window, AsOf: r.asOf, From: apitypes.At(r.top.From), Namespace: r.ns, Items: make([]apitypes.EditorItem, 0, len(r.top.Members)), UniqueEditors: r.top.Users, Note: r.note}
	for _, m := range r.top.Members {
		out.Items = append(out.Items, apitypes.EditorItem{Domain: m.Domain, User: m.Name, Count: m.Count})
	}
	return s.sendValue(c, out)
}
