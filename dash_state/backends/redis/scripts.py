"""Lua run inside the same MULTI/EXEC as the values' SETs: the bookkeeping that must be atomic.

Per user (one Cluster slot, thanks to the ``{user}`` hash tag) there are two small keys beside the
values: ``index``, a sorted set of every key (values and pointers) scored by expiry time in ms, which
lets ``delete_user`` and ``move_user`` work without KEYS or SCAN; and ``sizes``, a hash of each live
value's bytes plus their ``__total``, which makes the per-user quota exact under concurrency: the
check happens after the SETs, inside the transaction, and undoes them if the total would pass the
quota. Value data never passes through Lua (the SETs carry it, to staging keys the script renames
into place or deletes), only names and numbers.
"""

#: KEYS: index, sizes, the n value keys, the m pointer keys, the n staging keys the values were just SET to.
#: ARGV: now_ms, quota (-1: none), n, m, then n x (member, bytes, expiry_ms), then m x (member, target, ttl_ms).
#: Returns {1, total} when kept (staging keys renamed to the value keys), {0, total} when refused (the
#: staging keys are deleted, so a value being replaced keeps its old bytes).
WRITE = """
local index, sizes = KEYS[1], KEYS[2]
local function staged(i) return KEYS[3 + tonumber(ARGV[3]) + tonumber(ARGV[4]) + i] end
local now, quota = tonumber(ARGV[1]), tonumber(ARGV[2])
local n, m = tonumber(ARGV[3]), tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now)
for _, member in ipairs(expired) do
  local size = redis.call('HGET', sizes, member)
  if size then
    redis.call('HINCRBY', sizes, '__total', -tonumber(size))
    redis.call('HDEL', sizes, member)
  end
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', index, '-inf', now) end
local adding, longest = 0, 0
for i = 0, n - 1 do
  local old = redis.call('HGET', sizes, ARGV[5 + 3 * i])
  adding = adding + tonumber(ARGV[6 + 3 * i]) - (tonumber(old) or 0)
end
local total = tonumber(redis.call('HGET', sizes, '__total') or '0') + adding
if quota >= 0 and adding > 0 and total > quota then
  for i = 0, n - 1 do redis.call('UNLINK', staged(i)) end
  return {0, total}
end
for i = 0, n - 1 do
  local member, expiry = ARGV[5 + 3 * i], tonumber(ARGV[7 + 3 * i])
  if redis.call('EXISTS', staged(i)) == 1 then
    redis.call('RENAME', staged(i), KEYS[3 + i])  -- keeps the TTL the SET gave it
  else  -- a TTL of a millisecond already ran out: the new value is gone, and the old one replaced
    redis.call('UNLINK', KEYS[3 + i])
  end
  redis.call('HSET', sizes, member, ARGV[6 + 3 * i])
  redis.call('ZADD', index, expiry, member)
  if expiry - now > longest then longest = expiry - now end
end
redis.call('HINCRBY', sizes, '__total', adding)
local base = 5 + 3 * n
for j = 0, m - 1 do
  local member, target, ttl = ARGV[base + 3 * j], ARGV[base + 1 + 3 * j], tonumber(ARGV[base + 2 + 3 * j])
  redis.call('SET', KEYS[3 + n + j], target, 'PX', ttl)
  redis.call('ZADD', index, now + ttl, member)
  if ttl > longest then longest = ttl end
end
for _, key in ipairs({index, sizes}) do
  redis.call('PEXPIRE', key, longest, 'NX')
  redis.call('PEXPIRE', key, longest, 'GT')
end
return {1, total}
"""

#: KEYS: index, sizes, the value key. ARGV: member. Returns how many keys UNLINK removed (0 or 1).
#: UNLINK comes first: Redis refuses a script whose *first* write may grow memory (HINCRBY) when it is at
#: maxmemory, and a full Redis must still let users delete values to make room.
DELETE = """
local removed = redis.call('UNLINK', KEYS[3])
local size = redis.call('HGET', KEYS[2], ARGV[1])
if size then
  redis.call('HINCRBY', KEYS[2], '__total', -tonumber(size))
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('ZREM', KEYS[1], ARGV[1])
return removed
"""

#: KEYS: index, sizes, the value key. ARGV: member, ttl_ms, now_ms. Returns 1 if the value was alive.
#: Only a live value moves its index entry: a dead one must not count against the quota for a new TTL.
TOUCH = """
if redis.call('PEXPIRE', KEYS[3], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
redis.call('PEXPIRE', KEYS[2], ARGV[2], 'GT')
return 1
"""
