-- Atomically replace an order's record and append its outbound events to the order's outbox.
-- KEYS[1]: the order's hash {order:ID} (fields version, record); KEYS[2]: its outbox list.
-- ARGV[1]: the version the record was read at; ARGV[2]: the new record; ARGV[3..]: outbox entries.
-- Returns {1, entries pending from before...} when written: what an earlier attempt wrote and did
-- not get acknowledged (the caller already holds the entries it passed); {0, current version} when
-- another writer won (the caller reads again and recomputes). Both keys share one hash tag, so this
-- runs unchanged on a cluster.
local current = redis.call('HGET', KEYS[1], 'version') or '0'
if current ~= ARGV[1] then
  return {0, current}
end
local earlier = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('HSET', KEYS[1], 'version', tonumber(current) + 1, 'record', ARGV[2])
for i = 3, #ARGV do
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
table.insert(earlier, 1, 1)
return earlier
