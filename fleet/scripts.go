package fleet

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Lua scripts. Every script touches only keys of one token (or one vault),
// which share a Cluster hash tag, so they run on one node. A value of
// another Redis type under a token's name reads as "!" (garbage: a miss
// that the next store's SET replaces), never as a Redis failure.

// lockScript tries to take the acquisition lock and reads the value and
// the tenant's epoch in the same step: KEYS = value, lock, epoch; ARGV =
// owner, lock TTL (ms), longest TTL a live lock can have (ms), a fresh
// epoch, the epoch's TTL (ms). It returns {1 if the lock was taken else 0,
// value or nil, 1 if an abandoned lock was taken over else 0, epoch or
// nil}. A lock that has no expiry, or lives longer than any owner renews
// it for, was not written by a live owner (a bug, an operator, an
// attacker): the script, having observed it, deletes it and takes the lock
// (compare-and-delete, atomic as every script), instead of letting every
// replica wait for it. An epoch that is garbage (another Redis type, too
// long) is replaced by the fresh one, which only makes the tenant's stored
// tokens unservable: the token about to be acquired is stored under it,
// instead of every later call missing.
var lockScript = redis.NewScript(`
` + readValue() + readEpoch() + `
if e == '!' then
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
  e = ARGV[4]
end
local won = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
if won then return {1, v, 0, e} end
local p = redis.call('PTTL', KEYS[2])
if p == -1 or p > tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {1, v, 1, e}
end
return {0, v, 0, e}
`)

// readValue reads KEYS[1] into v: false (nil in Go) when absent, '!'
// (garbage: a miss that the next store replaces) when it is of another
// Redis type or longer than any entry (maxEntry bytes), so that a hostile
// value never costs a large transfer. A user whose ACL does not allow
// STRLEN (the fleet's before issue 18) reads the value unbounded.
func readValue() string { return readBounded("v", 1, maxEntry) }

// readEpoch reads KEYS[3], the tenant's epoch, into e as readValue does
// (absent: false; garbage: '!'), an empty or unprintable string being
// garbage too (as epochOf sees it).
func readEpoch() string {
	return readBounded("e", 3, maxEpoch) + `
if e and (e == '' or string.find(e, '[^\33-\126]')) then e = '!' end
`
}

// readBounded reads KEYS[key] into the Lua variable name: false when
// absent, '!' when of another Redis type or longer than limit bytes.
func readBounded(name string, key, limit int) string {
	k := "KEYS[" + strconv.Itoa(key) + "]"
	return `
local ` + name + ` = false
do
  local n = redis.pcall('STRLEN', ` + k + `)
  if type(n) == 'table' then
    if string.find(tostring(n['err']), 'WRONGTYPE', 1, true) then n = -1 else n = 0 end
  end
  if n == -1 or n > ` + strconv.Itoa(limit) + ` then
    ` + name + ` = '!'
  else
    ` + name + ` = redis.pcall('GET', ` + k + `)
    if type(` + name + `) == 'table' then ` + name + ` = '!' end
  end
end
`
}

// peekScript reads the value, the lock's remaining life and the tenant's
// epoch: KEYS = value, lock, epoch. It returns {value or nil, lock PTTL in
// ms (-2: none), epoch or nil}.
var peekScript = redis.NewScript(`
` + readValue() + readEpoch() + `
return {v, redis.call('PTTL', KEYS[2]), e}
`)

// storeScript stores a value if the tenant's epoch is still the one it
// was acquired under, releases the lock if ARGV[1] still owns it, and tells
// the waiting replicas: KEYS = value, lock, epoch; ARGV = owner, value,
// value TTL (ms), channel, message, expected epoch (empty for none), least TTL
// of the epoch (ms). The epoch is made to outlive the value, so that no
// entry stored under it is left behind when it expires. It returns 1 when
// it stored, 0 when the epoch moved (a Refuse or Forget since the lock).
var storeScript = redis.NewScript(`
` + readEpoch() + `
local stored = 0
if (e or '') == ARGV[6] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  stored = 1
  if e then
    local p = redis.call('PTTL', KEYS[3])
    if p >= 0 and p < tonumber(ARGV[7]) then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
  end
end
if ` + owns("KEYS[2]", "ARGV[1]") + ` then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return stored
`)

// owns is a Lua condition: the lock key holds owner. A lock of another
// Redis type (written by someone else) is not ours, not a script error:
// an error would count as a Redis failure and, repeated, open the
// circuit breaker for every tenant.
func owns(key, owner string) string {
	return `(function() local g = redis.pcall('GET', ` + key + `); return type(g) == 'string' and g == ` + owner + ` end)()`
}

// refuseScript moves a tenant's epoch to a fresh one and stores (or, with
// an empty entry, deletes) its refusal: KEYS = epoch, refusal; ARGV = new
// epoch, epoch TTL (ms), refusal entry (empty to delete it, '-' to leave it),
// refusal TTL (ms). Every token stored for the tenant before carries the
// old epoch, so no replica serves it again; SET replaces a value of any
// type.
var refuseScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == '' then
  redis.call('DEL', KEYS[2])
elseif ARGV[3] ~= '-' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
end
return 1
`)

// refusalScript reads a tenant's refusal: KEYS = refusal. It returns the
// value, an empty string when absent (not nil: a nil reply costs go-redis
// an error), '!' when garbage (another type, too long).
var refusalScript = redis.NewScript(readBounded("r", 1, maxRefusalEntry) + `
return r or ''
`)

// releaseScript deletes the lock only if ARGV[1] owns it, and tells the
// waiting replicas: KEYS = lock; ARGV = owner, channel, message.
var releaseScript = redis.NewScript(`
if ` + owns("KEYS[1]", "ARGV[1]") + ` then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`)

// renewScript extends the lock only if ARGV[1] owns it: KEYS = lock;
// ARGV = owner, TTL (ms).
var renewScript = redis.NewScript(`
if ` + owns("KEYS[1]", "ARGV[1]") + ` then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// gateScript is the fleet throttle: KEYS = hold-off, budget; ARGV = budget
// (signs per window, 0 for none), window (ms), unique member, longest
// hold-off (ms). It returns {0, 0} when a sign may go now (and counts it),
// {1, ms} while a 429 hold-off lasts, {2, ms} when the budget is spent (ms
// until a slot frees). The budget is a sliding log of sign times (Redis's
// clock) in a sorted set.
//
// Whatever another client wrote is bounded here: a hold-off with no expiry
// or one longer than the bound is cut to the bound (on the key itself, so
// every replica sees the same), a budget key of another type is dropped,
// entries dated in the future are dropped (they would never leave the
// window), and the wait for a budget slot is at most the window.
var gateScript = redis.NewScript(`
local maxhold = tonumber(ARGV[4])
local hold = redis.call('PTTL', KEYS[1])
if hold == -1 or hold > maxhold then
  redis.call('PEXPIRE', KEYS[1], maxhold)
  hold = maxhold
end
if hold > 0 then return {1, hold} end
local limit = tonumber(ARGV[1])
if limit <= 0 then return {0, 0} end
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.pcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if type(r) == 'table' then redis.call('DEL', KEYS[2]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. string.format('%d', now + 1000), '+inf')
if redis.call('ZCARD', KEYS[2]) < limit then
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], window + 1000)
  return {0, 0}
end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = window
if oldest[2] then wait = tonumber(oldest[2]) + window - now end
if wait < 1 then wait = 1 end
if wait > window then wait = window end
return {2, wait}
`)

// holdScript extends the shared 429 hold-off to at least ARGV[1] ms, and
// cuts one that has no expiry or lives longer than ARGV[2] ms (the bound)
// to the bound: KEYS = hold-off.
var holdScript = redis.NewScript(`
local ms = tonumber(ARGV[1])
local maxhold = tonumber(ARGV[2])
local cur = redis.call('PTTL', KEYS[1])
if cur < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
elseif cur > maxhold then
  redis.call('PEXPIRE', KEYS[1], maxhold)
end
return 1
`)
