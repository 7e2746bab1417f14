package ingest

// recentIDs is a bounded set of the most recent meta.ids: adding beyond its
// capacity forgets the oldest. It is used by the feed reader goroutine only.
type recentIDs struct {
	set  map[string]struct{}
	ring []string
	next int
}

// newRecentIDs returns a set remembering up to n ids; n <= 0 remembers none.
func newRecentIDs(n int) *recentIDs {
	if n <= 0 {
		return &recentIDs{}
	}
	return &recentIDs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it was new.
func (r *recentIDs) add(id string) bool {
	if len(r.ring) == 0 {
		return true
	}
	if _, ok := r.set[id]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return true
}

// len returns how many ids are remembered.
func (r *recentIDs) len() int { return len(r.set) }
