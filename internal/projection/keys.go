// Package projection is the Redis schema of wikiflow's counters: where each count
// lives, how a batch of events is applied exactly once, and how a rebuilt projection
// replaces the live one. Writers (aggregate, rebuild) and readers (api) use only the
// names defined here.
//
// Layout, for a base name B (default "wikimedia_stats") and a namespace N:
//
//	B                          hash  domain -> count, all time (the original hash, for old clients)
//	{B}:current                string the namespace readers and the live aggregate use (default "live")
//	{B}:ns:N:wm                hash  consumer name -> last applied stream sequence
//	{B}:ns:N:meta              hash  as_of_ms, updated_ms, events, first_seq, partial_from_ms, ...
//	{B}:ns:N:<bucket>:<kind>   the counters of one time bucket
//
// Buckets: "all" (all time), "m<unix minute>" (event-time minute, expires after
// MinuteTTL) and "h<unix hour>" (event-time hour, expires after HourTTL).
// Kinds: see the Kind constants. Every key but B carries the hash tag {B}, and B
// itself hashes to the same Redis Cluster slot as {B}, so one script may touch them all.
//
// # Shards
//
// A projection may be split into shards (see Sharding), each written by its own
// aggregate instance and summed by readers. Shard 0 is the layout above; shard
// k >= 1 has the same keys with the hash tag {B:s<k>} instead of {B}: its own
// pointer {B:s<k>}:current, and its own watermarks, meta and counters, all in one
// Redis Cluster slot, so that each apply script touches one slot. The shard count
// is kept in {B}:shards (absent: 1), written by the sharded aggregate and read by
// readers. The legacy hash B is kept by the shards' scripts only where they may
// write it: on a single Redis, and on a cluster only for one shard; a sharded
// projection on a cluster does not keep it, and readers sum the shards' all-time
// domain hashes instead (see Store.MirrorsLegacy).
package projection

import (
	"strconv"
	"strings"
	"time"
)

// DefaultNamespace is the namespace used before any rebuild switched the pointer.
const DefaultNamespace = "live"

// Bucket retention.
const (
	// MinuteTTL is how long per-minute buckets are kept (enough for 24 h of
	// minute-resolution time series).
	MinuteTTL = 25 * time.Hour
	// MinutePagesTTL is how long the per-minute top-N sets (pages, editors) and
	// unique-editor sketches are kept; windows longer than this use hourly buckets.
	MinutePagesTTL = 70 * time.Minute
	// HourTTL is how long hourly buckets are kept.
	HourTTL = 49 * time.Hour
)

// Kind names one family of counters inside a bucket.
type Kind string

// Kinds of counters kept in each bucket.
const (
	// KindCube is a hash "domain|wiki|type|bot" -> count (bot is "1" or "0"): every
	// filter and grouping by domain, wiki, type and bot is a sum over its fields.
	KindCube Kind = "cube"
	// KindNamespace is a hash namespace number -> count.
	KindNamespace Kind = "namespace"
	// KindEditor is a hash editor kind (registered, anonymous, temporary) -> count.
	KindEditor Kind = "editor"
	// KindWho is a hash who made the change -> count: WhoBot for a bot's change,
	// else the editor kind (registered, anonymous, temporary). Unlike KindEditor,
	// its fields split bots from humans, and they add up to the cube's total.
	KindWho Kind = "who"
	// KindMinor is a hash domain -> count of minor edits.
	KindMinor Kind = "minor"
	// KindBytes is a hash "domain|added" / "domain|removed" -> bytes.
	KindBytes Kind = "bytes"
	// KindPages is a sorted set "domain|title" -> changes (minute and hour buckets only).
	KindPages Kind = "pages"
	// KindEditors is a sorted set "domain|user" -> changes (minute and hour buckets only).
	KindEditors Kind = "editors"
	// KindUsers is a HyperLogLog of user names (minute and hour buckets only).
	KindUsers Kind = "users"
	// KindDomain is a hash domain -> count (all-time bucket only): the namespace's
	// own copy of the legacy hash, copied over it when a rebuild switches the pointer.
	KindDomain Kind = "domain"
)

// Meta hash fields.
const (
	MetaAsOf        = "as_of_ms"        // newest event time applied (Unix ms)
	MetaUpdated     = "updated_ms"      // wall-clock time of the last apply (Unix ms)
	MetaEvents      = "events"          // events applied
	MetaFirstSeq    = "first_seq"       // first stream sequence applied
	MetaPartialFrom = "partial_from_ms" // set by a rebuild that started after retention dropped events
	MetaBuiltAt     = "built_ms"        // set by a rebuild when it completed
	MetaStarted     = "started_ms"      // set by a rebuild when it claimed the namespace
)

// WhoBot is the KindWho field counting bots' changes.
const WhoBot = "bot"

// WhoField returns the KindWho field of a change: WhoBot when bot is set, else
// editorKind (event.Event.EditorKind).
func WhoField(bot bool, editorKind string) string {
	if bot {
		return WhoBot
	}
	return editorKind
}

// FieldSep separates the parts of composite hash fields and set members.
const FieldSep = "|"

// Keys names the keys of one projection namespace (of one shard).
type Keys struct {
	// Base is the base name B (the legacy hash's name).
	Base string
	// NS is the namespace.
	NS string
	// Shard is the shard the keys belong to (0: the unsharded layout).
	Shard int
}

// New returns the keys of namespace ns under base, in shard 0.
func New(base, ns string) Keys { return Keys{Base: base, NS: ns} }

// InShard returns the same keys in shard k.
func (k Keys) InShard(shard int) Keys {
	k.Shard = shard
	return k
}

func (k Keys) tag() string { return shardTag(k.Base, k.Shard) }

// shardTag is the hash tag of shard k of base.
func shardTag(base string, shard int) string {
	if shard == 0 {
		return "{" + base + "}"
	}
	return "{" + base + ":s" + strconv.Itoa(shard) + "}"
}

// ShardCount is the key holding the shard count of the projection ({B}:shards).
func (k Keys) ShardCount() string { return shardTag(k.Base, 0) + ":shards" }

// Legacy is the original domain -> count hash.
func (k Keys) Legacy() string { return k.Base }

// Pointer is the key holding the current namespace name.
func (k Keys) Pointer() string { return k.tag() + ":current" }

func (k Keys) prefix() string { return k.tag() + ":ns:" + k.NS + ":" }

// Prefix returns the prefix shared by every key of the namespace (for SCAN/cleanup).
func (k Keys) Prefix() string { return k.prefix() }

// Watermarks is the hash consumer -> last applied stream sequence.
func (k Keys) Watermarks() string { return k.prefix() + "wm" }

// Meta is the namespace's metadata hash.
func (k Keys) Meta() string { return k.prefix() + "meta" }

// All is the key of kind in the all-time bucket.
func (k Keys) All(kind Kind) string { return k.prefix() + "all:" + string(kind) }

// Minute is the key of kind in the bucket of the event-time minute holding t.
func (k Keys) Minute(kind Kind, t time.Time) string {
	return k.MinuteN(kind, t.Unix()/60)
}

// MinuteN is Minute for a Unix minute number.
func (k Keys) MinuteN(kind Kind, minute int64) string {
	return k.prefix() + "m" + strconv.FormatInt(minute, 10) + ":" + string(kind)
}

// Hour is the key of kind in the bucket of the event-time hour holding t.
func (k Keys) Hour(kind Kind, t time.Time) string {
	return k.HourN(kind, t.Unix()/3600)
}

// HourN is Hour for a Unix hour number.
func (k Keys) HourN(kind Kind, hour int64) string {
	return k.prefix() + "h" + strconv.FormatInt(hour, 10) + ":" + string(kind)
}

// CubeField builds a KindCube field.
func CubeField(domain, wiki, typ string, bot bool) string {
	b := "0"
	if bot {
		b = "1"
	}
	return domain + FieldSep + wiki + FieldSep + typ + FieldSep + b
}

// ParseCubeField splits a KindCube field; ok is false for a malformed field.
func ParseCubeField(f string) (domain, wiki, typ string, bot, ok bool) {
	parts := strings.Split(f, FieldSep)
	if len(parts) != 4 {
		return "", "", "", false, false
	}
	return parts[0], parts[1], parts[2], parts[3] == "1", true
}
