"""Lua run inside the same MULTI/EXEC as the values' SETs: the bookkeeping that must be atomic.

Per user (one Cluster slot, thanks to the ``{user}`` hash tag) there are two small keys beside the
values: ``index``, a sorted set of every key (values and pointers) scored by expiry time in ms, which
lets ``delete_user`` and ``move_user`` work without KEYS or SCAN; and ``sizes``, a hash of each live
value's bytes plus their ``__total``, which makes the per-user quota exact under concurrency: the
check happens after the SETs, inside the transaction, and undoes them if the total would pass the
quota. Value data never passes through Lua (the SETs carry it, to staging keys the script renames
into place or deletes), only names and numbers.

Each store's history (``<pointer>.history``, :mod:`dash_state.backends.history`) is a small string
key beside its pointer, listed in ``index`` like a pointer (no entry in ``sizes``: no quota). WRITE
evicts the values past ``STATE_VALUES_PER_STORE`` by their names (the user's key prefix plus the key):
keys it was not given in KEYS, but in the same ``{user}`` hash slot, so this holds on a cluster too.
"""

#: KEYS: index, sizes, the n value keys, the m pointer keys, the n staging keys the values were just SET
#: to, the m pointers' history keys, then the e pointer keys the write expects (compare-and-set).
#: ARGV: now_ms, quota (-1: none), n, m, values per store (0: leave histories alone), the user's key prefix, then n x (member, bytes,
#: expiry_ms), then m x (member, target, ttl_ms), then e x the target each expected pointer must name ('': none).
#: Returns {1, total, evicted} when kept (staging keys renamed to the value keys), {0, total, 0} when
#: refused (the staging keys are deleted, so a value being replaced keeps its old bytes), {2, j, found}
#: when the j-th (from 0) expected pointer names something else ('' for none, or not a key): checked
#: first, nothing is changed but the staging keys' deletion.
#: Each pointer's store keeps a history (``<pointer>.history``, a string of keys, newest first, ``~``
#: before a released one, see dash_state/backends/history.py): the keys past the newest ``limit`` live
#: ones, and released ones, are evicted here, before the quota check, so their bytes are free for it.
WRITE = """
local index, sizes = KEYS[1], KEYS[2]
local now, quota = tonumber(ARGV[1]), tonumber(ARGV[2])
local n, m, limit, prefix = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local function staged(i) return KEYS[3 + n + m + i] end
local function history(j) return KEYS[3 + 2 * n + m + j] end
local function is_key(key) return #key == 22 and not string.find(key, '[^A-Za-z0-9_-]') end
local e, first = #KEYS - 2 - 2 * n - 2 * m, 7 + 3 * n + 3 * m
for k = 0, e - 1 do
  local found = redis.call('GET', KEYS[3 + 2 * n + 2 * m + k])
  if not found or not is_key(found) then found = '' end
  if found ~= ARGV[first + k] then
    for i = 0, n - 1 do redis.call('UNLINK', staged(i)) end
    return {2, k, found}
  end
end
local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now)
for _, member in ipairs(expired) do
  local size = redis.call('HGET', sizes, member)
  if size then
    redis.call('HINCRBY', sizes, '__total', -tonumber(size))
    redis.call('HDEL', sizes, member)
  end
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', index, '-inf', now) end
local written = {}
for i = 0, n - 1 do written[ARGV[7 + 3 * i]] = true end
local base = 7 + 3 * n
local plans, order = {}, {}
for j = 0, (limit > 0 and m or 0) - 1 do
  local plan = plans[history(j)]
  if not plan then
    plan = {targets = {}, ttl = 0, member = ARGV[base + 3 * j] .. '.history', key = history(j)}
    plans[history(j)] = plan
    order[#order + 1] = plan
  end
  plan.targets[#plan.targets + 1] = ARGV[base + 1 + 3 * j]
  plan.ttl = math.max(plan.ttl, tonumber(ARGV[base + 2 + 3 * j]))
end
local evict, chosen, freed = {}, {}, 0
local function evicting(key)
  if not written[key] and not chosen[key] then
    chosen[key] = true
    evict[#evict + 1] = key
    freed = freed + tonumber(redis.call('HGET', sizes, key) or '0')
  end
end
for _, plan in ipairs(order) do
  local listed, seen = {}, {}
  for t = #plan.targets, 1, -1 do
    local key = plan.targets[t]
    if is_key(key) and not seen[key] then
      seen[key] = true
      listed[#listed + 1] = key
    end
  end
  for word in string.gmatch(redis.call('GET', plan.key) or '', '%S+') do
    local released = string.sub(word, 1, 1) == '~'
    local key = released and string.sub(word, 2) or word
    if is_key(key) and not seen[key] then
      seen[key] = true
      if released then evicting(key)
      elseif redis.call('HEXISTS', sizes, key) == 1 then listed[#listed + 1] = key end
    end
  end
  plan.entries = {}
  for k, key in ipairs(listed) do
    if k <= limit then plan.entries[k] = key else evicting(key) end
  end
end
local adding = 0
for i = 0, n - 1 do
  local old = redis.call('HGET', sizes, ARGV[7 + 3 * i])
  adding = adding + tonumber(ARGV[8 + 3 * i]) - (tonumber(old) or 0)
end
local total = tonumber(redis.call('HGET', sizes, '__total') or '0') + adding - freed
if quota >= 0 and adding - freed > 0 and total > quota then
  for i = 0, n - 1 do redis.call('UNLINK', staged(i)) end
  return {0, total, 0}
end
local removed = 0
for _, key in ipairs(evict) do
  removed = removed + redis.call('UNLINK', prefix .. key)
  redis.call('HDEL', sizes, key)
  redis.call('ZREM', index, key)
end
local longest = 0
for i = 0, n - 1 do
  local member, expiry = ARGV[7 + 3 * i], tonumber(ARGV[9 + 3 * i])
  if redis.call('EXISTS', staged(i)) == 1 then
    redis.call('RENAME', staged(i), KEYS[3 + i])  -- keeps the TTL the SET gave it
  else  -- a TTL of a millisecond already ran out: the new value is gone, and the old one replaced
    redis.call('UNLINK', KEYS[3 + i])
  end
  redis.call('HSET', sizes, member, ARGV[8 + 3 * i])
  redis.call('ZADD', index, expiry, member)
  if expiry - now > longest then longest = expiry - now end
end
redis.call('HINCRBY', sizes, '__total', adding - freed)
for j = 0, m - 1 do
  local member, target, ttl = ARGV[base + 3 * j], ARGV[base + 1 + 3 * j], tonumber(ARGV[base + 2 + 3 * j])
  redis.call('SET', KEYS[3 + n + j], target, 'PX', ttl)
  redis.call('ZADD', index, now + ttl, member)
  if ttl > longest then longest = ttl end
end
for _, plan in ipairs(order) do
  redis.call('SET', plan.key, table.concat(plan.entries, ' '), 'PX', plan.ttl)
  redis.call('ZADD', index, now + plan.ttl, plan.member)
end
for _, key in ipairs({index, sizes}) do
  redis.call('PEXPIRE', key, longest, 'NX')
  redis.call('PEXPIRE', key, longest, 'GT')
end
return {1, total, removed}
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

#: KEYS: index, the pointer key, its history key. ARGV: the pointer's member, the history's member, ttl_ms,
#: now_ms. Restarts the TTL of a live pointer (one naming a key) and keeps its history at least as long;
#: returns 0 if there is no such pointer.
TOUCH_POINTER = """
local target = redis.call('GET', KEYS[2])
if not target or #target ~= 22 or string.find(target, '[^A-Za-z0-9_-]') then return 0 end
local ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
local left = redis.call('PTTL', KEYS[3])
if left > 0 and left < ttl then
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ttl, 'GT')
return 1
"""

#: KEYS: index, sizes, the value key, the store's pointer key, its history key. ARGV: member, now_ms,
#: the history's member. Deletes the value as DELETE does, unless the pointer names it: then it marks
#: it released in the history (the store's next WRITE evicts it) and returns -1.
RELEASE = """
if redis.call('GET', KEYS[4]) == ARGV[1] then
  local words, found = {}, false
  for word in string.gmatch(redis.call('GET', KEYS[5]) or '', '%S+') do
    if word == ARGV[1] or word == '~' .. ARGV[1] then
      if not found then words[#words + 1] = '~' .. ARGV[1] end
      found = true
    else
      words[#words + 1] = word
    end
  end
  if not found then table.insert(words, 1, '~' .. ARGV[1]) end
  local ttl = math.max(redis.call('PTTL', KEYS[4]), redis.call('PTTL', KEYS[5]))
  if ttl > 0 then
    redis.call('SET', KEYS[5], table.concat(words, ' '), 'PX', ttl)
    redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + ttl, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], ttl, 'GT')
  end
  return -1
end
""" + DELETE

#: KEYS: the target's index, the target's history key of one store. ARGV: the source's history text,
#: its ttl_ms, now_ms, the history's member. A login's carry-over: the anonymous history (the session
#: just used) first, then the user's own, each key once; the store's next WRITE trims it.
MERGE = """
local merged, seen = {}, {}
for _, text in ipairs({ARGV[1], redis.call('GET', KEYS[2]) or ''}) do
  for word in string.gmatch(text, '%S+') do
    local key = string.sub(word, 1, 1) == '~' and string.sub(word, 2) or word
    if not seen[key] then
      seen[key] = true
      merged[#merged + 1] = word
    end
  end
end
local ttl = math.max(tonumber(ARGV[2]), redis.call('PTTL', KEYS[2]))
redis.call('SET', KEYS[2], table.concat(merged, ' '), 'PX', ttl)
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + ttl, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl, 'NX')
redis.call('PEXPIRE', KEYS[1], ttl, 'GT')
return 1
"""

#: KEYS: index, sizes. ARGV: now_ms, values per store, the user's key prefix, dry run ('1' or '0'), batch,
#: offset (dry runs: the expired members already counted). ``dash-state gc`` of one user: at most
#: ``batch`` expired members leave the index, their keys and their ``sizes`` entries (as WRITE does for
#: them, and UNLINK first, as in DELETE); while more remain it returns early. The last call also trims
#: each live history to its bound (dash_state/backends/inventory.py ``trim``: released values and the
#: live ones past the newest ``limit`` go, never the one the store's live pointer names) and rewrites
#: the histories it evicted from (KEEPTTL). With dry run nothing is changed; liveness is read from
#: the index scores either way. Returns {expired, evicted, bytes freed, more (1: call again)}.
GC = """
local index, sizes = KEYS[1], KEYS[2]
local now, limit, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local dry, batch, offset = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])
local function is_key(key) return #key == 22 and not string.find(key, '[^A-Za-z0-9_-]') end
local freed = 0
local function remove(member)
  local size = redis.call('HGET', sizes, member)
  if size then freed = freed + tonumber(size) end
  if not dry then
    redis.call('UNLINK', prefix .. member)
    redis.call('ZREM', index, member)
    if size then
      redis.call('HDEL', sizes, member)
      redis.call('HINCRBY', sizes, '__total', -tonumber(size))
    end
  end
end
local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', dry and offset or 0, batch)
for _, member in ipairs(expired) do remove(member) end
if #expired >= batch then return {#expired, 0, freed, 1} end
local function live(member)
  local score = redis.call('ZSCORE', index, member)
  return score and tonumber(score) > now
end
local function alive(key) return live(key) and redis.call('HEXISTS', sizes, key) == 1 end
local keep = math.max(limit, 1)
local evicted, chosen, rewrites = {}, {}, {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf')) do
  if string.sub(member, 1, 7) == 'latest.' and string.sub(member, -8) == '.history' then
    local pointer = string.sub(member, 1, #member - 8)
    local target = live(pointer) and redis.call('GET', prefix .. pointer) or nil
    local words, present = {}, false
    for word in string.gmatch(redis.call('GET', prefix .. member) or '', '%S+') do
      words[#words + 1] = word
      if target and (word == target or word == '~' .. target) then present = true end
    end
    local count = 0
    if present and is_key(target) and alive(target) then count = 1 else target = nil end
    local kept, seen, gone = {}, {}, 0
    for _, word in ipairs(words) do
      local released = string.sub(word, 1, 1) == '~'
      local key = released and string.sub(word, 2) or word
      if is_key(key) and not seen[key] then
        seen[key] = true
        if key == target then kept[#kept + 1] = word
        elseif alive(key) then
          if released or count >= keep then
            gone = gone + 1
            if not chosen[key] then
              chosen[key] = true
              evicted[#evicted + 1] = key
            end
          else
            kept[#kept + 1] = key
            count = count + 1
          end
        end
      end
    end
    if gone > 0 then rewrites[#rewrites + 1] = {prefix .. member, table.concat(kept, ' ')} end
  end
end
for _, key in ipairs(evicted) do remove(key) end
if not dry then
  for _, rewrite in ipairs(rewrites) do redis.call('SET', rewrite[1], rewrite[2], 'KEEPTTL') end
  if redis.call('EXISTS', index) == 0 then redis.call('UNLINK', sizes) end
end
return {#expired, #evicted, freed, 0}
"""
