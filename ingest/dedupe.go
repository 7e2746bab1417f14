package ingest

import "hash/maphash"

// idKey is a meta.id reduced to 128 bits: two independent seeded hashes of it.
// Keys without pointers keep the set out of the garbage collector's way, and a
// false match (two ids of one window sharing both hashes) has a chance of about
// 2^-128 × the window's size per event.
type idKey [2]uint64

// recentIDs is a bounded set of the most recent meta.ids: adding beyond its
// capacity forgets the oldest. It is used by the feed reader goroutine only.
type recentIDs struct {
	seeds [2]maphash.Seed
	set   map[idKey]struct{}
	ring  []idKey
	used  int // entries of ring in use
	next  int
}

// newRecentIDs returns a set remembering up to n ids; n <= 0 remembers none.
func newRecentIDs(n int) *recentIDs {
	if n <= 0 {
		return &recentIDs{}
	}
	return &recentIDs{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		set:   make(map[idKey]struct{}, n),
		ring:  make([]idKey, n),
	}
}

// add records id and reports whether it was new.
func (r *recentIDs) add(id string) bool {
	if len(r.ring) == 0 {
		return true
	}
	k := idKey{maphash.String(r.seeds[0], id), maphash.String(r.seeds[1], id)}
	if _, ok := r.set[k]; ok {
		return false
	}
	if r.used == len(r.ring) {
		delete(r.set, r.ring[r.next])
	} else {
		r.used++
	}
	r.ring[r.next] = k
	r.set[k] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return true
}

// len returns how many ids are remembered.
func (r *recentIDs) len() int { return len(r.set) }
