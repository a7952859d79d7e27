package fleet

import "github.com/redis/go-redis/v9"

// Lua scripts. Every script touches only keys of one token (or one vault),
// which share a Cluster hash tag, so they run on one node. A value of
// another Redis type under a token's name reads as "!" (garbage: a miss
// that the next store's SET replaces), never as a Redis failure.

// lockScript tries to take the acquisition lock and reads the value in the
// same step: KEYS = value, lock; ARGV = owner, lock TTL (ms). It returns
// {1 if the lock was taken else 0, value or nil}.
var lockScript = redis.NewScript(`
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then v = '!' end
local won = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
if won then return {1, v} end
return {0, v}
`)

// peekScript reads the value and the lock's remaining life:
// KEYS = value, lock. It returns {value or nil, lock PTTL in ms (-2: none)}.
var peekScript = redis.NewScript(`
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then v = '!' end
return {v, redis.call('PTTL', KEYS[2])}
`)

// storeScript stores a value, releases the lock if ARGV[1] still owns it,
// and tells the waiting replicas: KEYS = value, lock; ARGV = owner, value,
// value TTL (ms), channel, message.
var storeScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)

// releaseScript deletes the lock only if ARGV[1] owns it, and tells the
// waiting replicas: KEYS = lock; ARGV = owner, channel, message.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`)

// renewScript extends the lock only if ARGV[1] owns it: KEYS = lock;
// ARGV = owner, TTL (ms).
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// gateScript is the fleet throttle: KEYS = hold-off, budget; ARGV = budget
// (signs per window, 0 for none), window (ms), unique member. It returns
// {0, 0} when a sign may go now (and counts it), {1, ms} while a 429
// hold-off lasts, {2, ms} when the budget is spent (ms until a slot frees).
// The budget is a sliding log of sign times (Redis's clock) in a sorted set.
var gateScript = redis.NewScript(`
local hold = redis.call('PTTL', KEYS[1])
if hold > 0 then return {1, hold} end
local limit = tonumber(ARGV[1])
if limit <= 0 then return {0, 0} end
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) < limit then
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], window + 1000)
  return {0, 0}
end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return {2, wait}
`)

// holdScript extends the shared 429 hold-off to at least ARGV[1] ms:
// KEYS = hold-off.
var holdScript = redis.NewScript(`
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
`)
