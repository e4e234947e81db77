/*
 * Lua scripts for the redis policy: one EVALSHA per request checks every window of an identity and
 * counts only when all of them allow it, atomically, so concurrent gateways never overshoot.
 * Decisions use the same expressions as MemoryLimitStore (limit-algorithms.ts). Every key of one
 * call shares a {hash tag}, so the script also runs on Redis Cluster. Values are returned as
 * strings: Redis would truncate Lua numbers to integers.
 */

/** KEYS: one counter per window. ARGV per window: limit, ttl ms. Returns {blocked, count...}. */
export const FIXED_WINDOW_LUA = `
local n = #KEYS
local counts = {}
local blocked = 0
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  counts[i] = c
  if c + 1 > tonumber(ARGV[2 * i - 1]) then blocked = 1 end
end
if blocked == 0 then
  for i = 1, n do
    local c = redis.call('INCR', KEYS[i])
    if c == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
    counts[i] = c
  end
end
local out = { tostring(blocked) }
for i = 1, n do out[i + 1] = tostring(counts[i]) end
return out
`;

/**
 * KEYS per window: previous bucket, current bucket. ARGV per window: limit, size ms, elapsed ms in
 * the current bucket, ttl ms. Returns {blocked, prev, cur, ...}.
 */
export const SLIDING_WINDOW_LUA = `
local n = #KEYS / 2
local prev, cur = {}, {}
local blocked = 0
for i = 1, n do
  local p = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local c = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  prev[i] = p
  cur[i] = c
  local limit = tonumber(ARGV[4 * i - 3])
  local size = tonumber(ARGV[4 * i - 2])
  local elapsed = tonumber(ARGV[4 * i - 1])
  if p * (size - elapsed) / size + c + 1 > limit then blocked = 1 end
end
if blocked == 0 then
  for i = 1, n do
    local c = redis.call('INCR', KEYS[2 * i])
    if c == 1 then redis.call('PEXPIRE', KEYS[2 * i], ARGV[4 * i]) end
    cur[i] = c
  end
end
local out = { tostring(blocked) }
for i = 1, n do
  out[2 * i] = tostring(prev[i])
  out[2 * i + 1] = tostring(cur[i])
end
return out
`;

/**
 * KEYS: one bucket (hash of v = tokens, t = last refill) per window. ARGV: now ms, then per window:
 * limit, size ms, capacity. Returns {blocked, tokens...} with tokens after this request when allowed.
 */
export const TOKEN_BUCKET_LUA = `
local now = tonumber(ARGV[1])
local n = #KEYS
local tokens, stamps = {}, {}
local blocked = 0
for i = 1, n do
  local limit = tonumber(ARGV[3 * i - 1])
  local size = tonumber(ARGV[3 * i])
  local cap = tonumber(ARGV[3 * i + 1])
  local rate = limit / size
  local s = redis.call('HMGET', KEYS[i], 'v', 't')
  local v, t = tonumber(s[1]), tonumber(s[2])
  if v == nil or t == nil then
    tokens[i] = cap
    stamps[i] = now
  else
    local dt = now - t
    if dt < 0 then dt = 0 end
    tokens[i] = math.min(cap, v + dt * rate)
    stamps[i] = math.max(t, now)
  end
  if tokens[i] < 1 then blocked = 1 end
end
if blocked == 0 then
  for i = 1, n do
    local limit = tonumber(ARGV[3 * i - 1])
    local size = tonumber(ARGV[3 * i])
    local cap = tonumber(ARGV[3 * i + 1])
    local rate = limit / size
    tokens[i] = tokens[i] - 1
    redis.call('HSET', KEYS[i], 'v', string.format('%.17g', tokens[i]), 't', string.format('%.17g', stamps[i]))
    redis.call('PEXPIRE', KEYS[i], string.format('%d', math.ceil((cap - tokens[i]) / rate) + 1000))
  end
end
local out = { tostring(blocked) }
for i = 1, n do out[i + 1] = string.format('%.17g', tokens[i]) end
return out
`;
