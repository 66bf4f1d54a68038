"""The Lua scripts RedisState runs on Redis: each check-and-count is one atomic call, on Redis's clock."""

from __future__ import annotations

__all__ = ["ACQUIRE", "ADMIT", "RENEW", "SETTLE"]

# KEYS: the rpm window (sorted set of admission times), the tpm window (hash: second -> tokens).
# ARGV: rpm (0: none), tpm (0: none), tokens to reserve, a unique member for the rpm set.
# Returns {0, second}: admitted (the tpm bucket reserved in), or {1 (rpm) | 2 (tpm), ms to wait}.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, reserve = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local sec = math.floor(now / 1000)
if tpm > 0 then
  local all = redis.call('HGETALL', KEYS[2])
  local sum, buckets = 0, {}
  for i = 1, #all, 2 do
    local s, v = tonumber(all[i]), tonumber(all[i + 1])
    if s <= sec - 60 then
      redis.call('HDEL', KEYS[2], all[i])
    else
      sum = sum + v
      buckets[#buckets + 1] = {s, v}
    end
  end
  if sum >= tpm then
    table.sort(buckets, function(a, b) return a[1] < b[1] end)
    for _, b in ipairs(buckets) do
      sum = sum - b[2]
      if sum < tpm then return {2, (b[1] + 61) * 1000 - now} end
    end
    return {2, 60000}
  end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    return {1, tonumber(oldest[2]) + 60000 - now}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
if tpm > 0 and reserve > 0 then
  redis.call('HINCRBY', KEYS[2], sec, reserve)
  redis.call('PEXPIRE', KEYS[2], 62000)
end
return {0, sec}
"""

# KEYS: the tpm window. ARGV: the correction (used - reserved), counted in the current second, as
# the in-memory backend does.
SETTLE = """
local t = redis.call('TIME')
redis.call('HINCRBY', KEYS[1], t[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], 62000)
return 1
"""

# KEYS: the semaphore (sorted set: lease id -> expiry ms). ARGV: limit, lease id, ttl ms.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
  return 1
end
return 0
"""

# KEYS: semaphores; ARGV: ttl ms, then one lease id per key. Extends the leases still held.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, 2 * ttl)
end
return 1
"""
