package api

import (
	"context"
	"strconv"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// readHead reads the pointer and the meta of the namespace it names in one round
// trip (guessing the namespace from the previous request; a second round trip
// only when the pointer moved). With legacy set it also reads the legacy hash.
// Every key of the response is then taken from the returned namespace only.
func (s *Server) readHead(ctx context.Context, legacy bool) (projection.Head, error) {
	var guess string
	if g := s.lastNS.Load(); g != nil {
		guess = *g
	}
	h, err := s.reader.Head(ctx, guess, legacy)
	if err != nil {
		return projection.Head{}, s.redisErr("read pointer and meta", err)
	}
	if ns := h.Keys.NS; ns != guess {
		s.lastNS.Store(&ns)
	}
	return h, nil
}

// redisErr counts a failed Redis call and wraps it as a 503.
func (s *Server) redisErr(what string, err error) error {
	s.stats.RedisFailures.Add(1)
	return unavailable(what, err)
}

// hgetall reads many hashes of h's namespace in one pipeline, each summed over
// the shards of a sharded projection.
func (s *Server) hgetall(ctx context.Context, h projection.Head, keys []string) ([]map[string]string, error) {
	out, err := s.reader.SumHashes(ctx, h, keys)
	if err != nil {
		return nil, s.redisErr("read counters", err)
	}
	return out, nil
}

// cubeCell is one parsed field of a cube hash.
type cubeCell struct {
	domain, wiki, typ string
	bot, ok           bool
}

// cubeParser parses cube fields, each distinct field once per request.
type cubeParser map[string]cubeCell

func (p cubeParser) parse(f string) cubeCell {
	if c, ok := p[f]; ok {
		return c
	}
	var c cubeCell
	c.domain, c.wiki, c.typ, c.bot, c.ok = projection.ParseCubeField(f)
	p[f] = c
	return c
}

// filter selects cube cells.
type filter struct {
	wiki, domain, typ string
	bot               int8 // -1 = any
}

func (q *query) filter() filter {
	return filter{wiki: q.wiki, domain: q.domain, typ: q.typ, bot: q.bot}
}

func (f filter) match(c cubeCell) bool {
	if !c.ok {
		return false
	}
	if f.wiki != "" && c.wiki != f.wiki || f.domain != "" && c.domain != f.domain || f.typ != "" && c.typ != f.typ {
		return false
	}
	if f.bot >= 0 && c.bot != (f.bot == 1) {
		return false
	}
	return true
}

// groupOf is the group key of a cell for a cube grouping.
func groupOf(by string, c cubeCell) string {
	switch by {
	case byWiki:
		return c.wiki
	case byType:
		return c.typ
	case byBot:
		if c.bot {
			return "bot"
		}
		return "human"
	default:
		return c.domain
	}
}

// parseCount parses a counter value; bad values are counted and skipped.
func (s *Server) parseCount(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		s.stats.BadCounters.Add(1)
		return 0
	}
	return n
}
