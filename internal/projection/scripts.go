package projection

import "strings"

// Results of the apply script (first element of its reply).
const (
	applyOK       = 1 // {1, lastSeq}
	applyConflict = 2 // {2, current watermark}
	applyStale    = 3 // {3, current namespace}
)

// Fixed KEYS and ARGV of the apply script.
const (
	applyFixedKeys = 4  // pointer, watermarks, meta, legacy
	applyFixedArgs = 10 // see applySource
)

// applySource is the apply script. It validates everything before its first write,
// so that an invalid call is refused without changing anything, then checks the
// namespace, compares-and-sets the consumer's watermark, reads what the sorted-set
// updates depend on, and only then writes.
//
// KEYS:
//
//	1 pointer   2 watermarks hash   3 meta hash   4 legacy hash   5.. counter keys
//
// ARGV:
//
//	1 namespace           2 default namespace (a missing pointer means this one)
//	3 consumer            4 prevSeq (expected watermark; missing watermark = 0)
//	5 lastSeq             6 now (Unix ms, becomes updated_ms)
//	7 as_of (Unix ms of the newest event, 0 = none)
//	8 events in the batch 9 first stream sequence of the batch (0 = none)
//	10 "1" to require that the namespace is current, "0" to apply to any namespace
//	11.. groups, one after the other, each:
//	     <key index into KEYS, >= 5> <op> <ttl seconds, 0 = none> <n> <items>
//	   where op is
//	     h  HINCRBY: items are n field value pairs
//	     d  like h, and also HINCRBY into the legacy hash when the namespace is current
//	     z  ZINCRBY: items are n members, then their n increments in the same order
//	     u  ZINCRBY by 1: items are n members
//	     p  PFADD: items are n members
//	   and, when ttl > 0, the key's EXPIRE is set to ttl after its writes. A member
//	   goes at most once per key in a call, across all the key's z and u groups:
//	   the encoder sums a member's increments first (see Delta.zgroups). The script
//	   refuses a call that repeats one, before any write (the check costs about 5 %
//	   of the script; without it a repeat would keep only one of its increments).
//
// A sorted set's increments are applied as one ZMSCORE (skipped when the key is
// new) and one multi-member ZADD of the new scores per chunk of members, rather
// than one ZINCRBY per member: the same double-precision sums ZINCRBY computes
// (counts stay exact up to 2^53) with fewer commands, and, since every score is
// read before the first write, a sum that is not a number refuses the call instead
// of failing halfway. ZMSCORE needs Redis >= 6.2. A member the key does not hold
// yet is written with its increment's own argument as its score; a sum is passed
// to ZADD as a Lua number, which Redis formats with 17 significant digits (as
// ZINCRBY stores it: the same double).
//
// Sequences and counts are canonical decimal integers (no sign, no leading zero);
// increments are canonical signed integers of at most 18 digits, so that neither
// Lua's numbers nor Redis's parser can round or refuse them halfway.
//
// Reply: {1, lastSeq} applied; {2, watermark} the watermark is not prevSeq, nothing
// changed; {3, namespace} the namespace is not current (and ARGV[10] is "1"),
// nothing changed; an error reply "ERR wikiflow apply: ..." for invalid input,
// nothing changed.
var applySource = strings.NewReplacer(
	"@AS_OF@", MetaAsOf,
	"@UPDATED@", MetaUpdated,
	"@EVENTS@", MetaEvents,
	"@FIRST_SEQ@", MetaFirstSeq,
	"@CHUNK@", "500",
).Replace(`
local function fail(msg) return redis.error_reply('ERR wikiflow apply: ' .. msg) end
local function uint(s)
  return type(s) == 'string' and #s <= 19 and (s == '0' or string.match(s, '^[1-9]%d*$') ~= nil)
end
local function small(s)
  return type(s) == 'string' and #s <= 9 and (s == '0' or string.match(s, '^[1-9]%d*$') ~= nil)
end
local function int(s)
  return type(s) == 'string' and #s <= 19 and (s == '0' or string.match(s, '^-?[1-9]%d*$') ~= nil)
end
local function less(a, b) -- canonical unsigned decimals
  if #a ~= #b then return #a < #b end
  return a < b
end

local nk, na = #KEYS, #ARGV
if nk < 4 then return fail('need at least 4 keys') end
if na < 10 then return fail('need at least 10 arguments') end
local ns, defns, consumer = ARGV[1], ARGV[2], ARGV[3]
local prev, last, now, asof, events, first = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if ns == '' or defns == '' or consumer == '' then return fail('empty namespace or consumer') end
if not (uint(prev) and uint(last) and uint(now) and uint(asof) and uint(events) and uint(first)) then
  return fail('sequences, times and counts must be unsigned integers')
end
if less(last, prev) then return fail('lastSeq below prevSeq') end
if #asof > 15 or #now > 15 then return fail('time out of range') end
if ARGV[10] ~= '0' and ARGV[10] ~= '1' then return fail('require-current flag must be 0 or 1') end

local want = {[1] = 'string', [2] = 'hash', [3] = 'hash', [4] = 'hash'}
local types = {h = 'hash', d = 'hash', z = 'zset', u = 'zset', p = 'string'}
local groups, match = {}, string.match
local i = 11
while i <= na do
  if i + 3 > na then return fail('truncated group header at argument ' .. i) end
  local ki, op, ttl, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if not (small(ki) and small(ttl) and small(n)) then return fail('bad group header at argument ' .. i) end
  ki, ttl, n = tonumber(ki), tonumber(ttl), tonumber(n)
  if ki <= 4 or ki > nk then return fail('key index out of range at argument ' .. i) end
  local t = types[op]
  if not t then return fail('unknown op at argument ' .. (i + 1)) end
  local width = 2
  if op == 'p' or op == 'u' then width = 1 end
  local from, to = i + 4, i + 3 + n * width
  if to > na then return fail('truncated group at argument ' .. i) end
  if op == 'z' then
    for j = from + n, to do
      local s = ARGV[j]
      if #s > 19 or (s ~= '0' and not match(s, '^-?[1-9]%d*$')) then return fail('increment is not an integer at argument ' .. j) end
    end
  elseif width == 2 then
    for j = from + 1, to, 2 do
      local s = ARGV[j]
      if #s > 19 or (s ~= '0' and not match(s, '^-?[1-9]%d*$')) then return fail('increment is not an integer at argument ' .. j) end
    end
  end
  if want[ki] and want[ki] ~= t then return fail('key ' .. ki .. ' used with two types') end
  want[ki] = t
  groups[#groups + 1] = {ki, op, ttl, from, to, n}
  i = to + 1
end
local fresh, named = {}, {}
for ki, t in pairs(want) do
  local key = KEYS[ki]
  if named[key] and named[key] ~= t then return fail('key ' .. key .. ' used with two types') end
  named[key] = t
  local got = redis.call('TYPE', key)['ok']
  if got == 'none' then fresh[ki] = true
  elseif got ~= t then return fail('key ' .. key .. ' holds a ' .. got .. ', not a ' .. t) end
end
local oldasof = redis.call('HGET', KEYS[3], '@AS_OF@')
if oldasof and not uint(oldasof) then return fail('meta @AS_OF@ is not an integer') end
local oldevents = redis.call('HGET', KEYS[3], '@EVENTS@')
if oldevents and not int(oldevents) then return fail('meta @EVENTS@ is not an integer') end

local cur = redis.call('GET', KEYS[1])
if not cur then cur = defns end
if ARGV[10] == '1' and cur ~= ns then return {3, cur} end
local wm = redis.call('HGET', KEYS[2], consumer)
if not wm then wm = '0' end
if wm ~= prev then return {2, wm} end

-- Read the scores the sorted-set groups add to (none when the key is new), and
-- compute their new scores. Each member appears at most once per key in a call
-- (see the ops above), so a member's new score is its old one plus its increment.
local unpack, min, tonumber, chunk = unpack, math.min, tonumber, @CHUNK@
local zadds, zkeys = {}, {}
for gi, g in ipairs(groups) do
  local op, from, n = g[2], g[4], g[6]
  if op == 'z' or op == 'u' then
    local ki, adds = g[1], {}
    local key, one = KEYS[ki], (op == 'u')
    local seen = zkeys[key]
    if not seen then seen = {}; zkeys[key] = seen end
    for y = from, from + n - 1 do
      if seen[ARGV[y]] then return fail('member ' .. ARGV[y] .. ' twice in ' .. key) end
      seen[ARGV[y]] = true
    end
    local j = 0
    while j < n do
      local k = min(j + chunk, n)
      local set, m = {}, 0
      if fresh[ki] then
        for y = from + j, from + k - 1 do
          if one then set[m + 1] = '1' else set[m + 1] = ARGV[y + n] end
          set[m + 2] = ARGV[y]
          m = m + 2
        end
      else
        local old = redis.call('ZMSCORE', key, unpack(ARGV, from + j, from + k - 1))
        for y = 1, k - j do
          local x, base = from + j + y - 1, old[y]
          if not base then
            if one then set[m + 1] = '1' else set[m + 1] = ARGV[x + n] end
          else
            local v
            if one then v = 1 + tonumber(base) else v = tonumber(ARGV[x + n]) + tonumber(base) end
            if v ~= v then return fail('score of ' .. ARGV[x] .. ' in ' .. key .. ' would not be a number') end
            set[m + 1] = v
          end
          set[m + 2] = ARGV[x]
          m = m + 2
        end
      end
      adds[#adds + 1] = set
      j = k
    end
    zadds[gi] = adds
  end
end

local mirror = (cur == ns)
for gi, g in ipairs(groups) do
  local key, op, ttl, from, to = KEYS[g[1]], g[2], g[3], g[4], g[5]
  if op == 'p' then
    local j = from
    while j <= to do
      local k = math.min(j + 199, to)
      redis.call('PFADD', key, unpack(ARGV, j, k))
      j = k + 1
    end
  elseif op == 'z' or op == 'u' then
    for _, set in ipairs(zadds[gi]) do redis.call('ZADD', key, unpack(set)) end
  else
    for j = from, to, 2 do redis.call('HINCRBY', key, ARGV[j], ARGV[j + 1]) end
    if op == 'd' and mirror then
      for j = from, to, 2 do redis.call('HINCRBY', KEYS[4], ARGV[j], ARGV[j + 1]) end
    end
  end
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end

if asof ~= '0' and (not oldasof or less(oldasof, asof)) then
  redis.call('HSET', KEYS[3], '@AS_OF@', asof)
end
redis.call('HSET', KEYS[3], '@UPDATED@', now)
redis.call('HINCRBY', KEYS[3], '@EVENTS@', events)
if first ~= '0' then redis.call('HSETNX', KEYS[3], '@FIRST_SEQ@', first) end
redis.call('HSET', KEYS[2], consumer, last)
return {1, last}
`)

// Results of the switch script.
const (
	switchOK          = 1 // {1}
	switchStale       = 2 // {2, current namespace}
	switchNotCaughtUp = 3 // {3, consumer, watermark in from, watermark in to}
)

// switchChecks are the first lines of the switch scripts (KEYS 1 pointer, 2
// watermarks of from, 3 watermarks of to; ARGV 1 from, 2 to, 3 default
// namespace, 4.. consumers): they return, changing nothing, unless the pointer
// names from (missing = default) and every consumer's watermark is the same in
// both namespaces (missing = 0).
const switchChecks = `
local cur = redis.call('GET', KEYS[1])
if not cur then cur = ARGV[3] end
if cur ~= ARGV[1] then return {2, cur} end
for i = 4, #ARGV do
  local a = redis.call('HGET', KEYS[2], ARGV[i]) or '0'
  local b = redis.call('HGET', KEYS[3], ARGV[i]) or '0'
  if a ~= b then return {3, ARGV[i], a, b} end
end
`

// switchSource is the switch script.
//
// KEYS: 1 pointer, 2 watermarks of from, 3 watermarks of to, 4 legacy hash,
// 5 the all-time domain hash of to.
// ARGV: 1 from, 2 to, 3 default namespace, 4.. consumers.
//
// After switchChecks it replaces the legacy hash by a copy of to's domain hash
// (COPY ... REPLACE, or DEL when to has none) and points the pointer at to. COPY
// runs before any other write, so on a Redis without COPY the script fails
// having changed nothing.
const switchSource = switchChecks + `
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('COPY', KEYS[5], KEYS[4], 'REPLACE')
else
  redis.call('DEL', KEYS[4])
end
redis.call('SET', KEYS[1], ARGV[2])
return {1}
`

// switchShardSource is the switch script of one shard of a sharded projection.
//
// KEYS: 1-3 as switchSource's; where the shards keep the legacy hash (a single
// Redis), also 4 legacy hash, 5 the all-time domain hash of to, 6 that of from.
// ARGV: as switchSource's.
//
// After switchChecks it moves the legacy hash, which holds the sum of every
// shard's domain counts, by this shard's change: from's counts subtracted, to's
// added, a field that reaches 0 removed. Without keys 4-6 it leaves the legacy
// hash alone. Then it points the pointer at to.
const switchShardSource = switchChecks + `
if #KEYS == 6 then
  for pass = 1, 2 do
    local h, sign = KEYS[6], -1
    if pass == 2 then h, sign = KEYS[5], 1 end
    local f = redis.call('HGETALL', h)
    for i = 1, #f, 2 do
      if redis.call('HINCRBY', KEYS[4], f[i], sign * tonumber(f[i + 1])) == 0 then
        redis.call('HDEL', KEYS[4], f[i])
      end
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return {1}
`

// zincrSource is the sorted-set increment script of Bulk: KEYS[1] is the set,
// ARGV member, increment pairs (each member once). It reads the members' scores
// with one ZMSCORE and writes the sums with one ZADD: what ZINCRBY per member
// computes, in two commands. Bulk sends well-formed arguments only; an increment
// that is not a number makes the script fail before its write.
const zincrSource = `
local n = #ARGV / 2
local members = {}
for i = 1, n do members[i] = ARGV[2 * i - 1] end
local old = redis.call('ZMSCORE', KEYS[1], unpack(members))
local set = {}
for i = 1, n do
  local v = tonumber(ARGV[2 * i])
  if not v then return redis.error_reply('ERR wikiflow zincr: increment is not a number') end
  if old[i] then v = v + tonumber(old[i]) end
  set[2 * i - 1] = string.format('%.17g', v)
  set[2 * i] = members[i]
end
redis.call('ZADD', KEYS[1], unpack(set))
return n
`
