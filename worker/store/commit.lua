-- Write one group's batch atomically: every entity record, timer, index and outbox entry of it, and
-- the group's meta (input offsets and sequences applied, this group's own output sequence), but only
-- if no other writer moved the group's version since the caller read it (a fence against an
-- instance that lost the partitions in a rebalance and does not know yet).
-- KEYS[1]: the group's meta hash; KEYS[2]: its outbox list; KEYS[3..]: every other key written.
-- ARGV[1]: the version read; ARGV[2]: how many meta field/value pairs follow; then the pairs; then
-- operations, each a code, a key index (into KEYS) and the code's arguments:
--   S value: SET; D: DEL; Z score member: ZADD; z member: ZREM; R value: RPUSH;
--   L cap value: LPUSH then keep the first cap; H field increment: HINCRBY; h field value: HSET;
--   T cap: keep the highest cap members of a sorted set.
-- Returns {1, outbox length before this write} (entries an earlier attempt left unacknowledged), or
-- {0, the current version} when another writer moved it. All keys share one hash tag (the group's),
-- so this runs unchanged on Redis Cluster.
local current = redis.call('HGET', KEYS[1], 'v') or '0'
if current ~= ARGV[1] then
  return {0, current}
end
local before = redis.call('LLEN', KEYS[2])
local pairs_count = tonumber(ARGV[2])
local meta = {'v', tonumber(current) + 1}
for i = 3, 2 + 2 * pairs_count do
  meta[#meta + 1] = ARGV[i]
end
local i = 3 + 2 * pairs_count
while i <= #ARGV do
  local code, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if code == 'S' then
    redis.call('SET', key, ARGV[i + 2]); i = i + 3
  elseif code == 'D' then
    redis.call('DEL', key); i = i + 2
  elseif code == 'Z' then
    redis.call('ZADD', key, ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif code == 'z' then
    redis.call('ZREM', key, ARGV[i + 2]); i = i + 3
  elseif code == 'R' then
    redis.call('RPUSH', key, ARGV[i + 2]); i = i + 3
  elseif code == 'L' then
    redis.call('LPUSH', key, ARGV[i + 3]); redis.call('LTRIM', key, 0, tonumber(ARGV[i + 2]) - 1)
    i = i + 4
  elseif code == 'H' then
    redis.call('HINCRBY', key, ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif code == 'h' then
    redis.call('HSET', key, ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif code == 'T' then
    redis.call('ZREMRANGEBYRANK', key, 0, -tonumber(ARGV[i + 2]) - 1); i = i + 3
  else
    return redis.error_reply('commit.lua: unknown operation ' .. code)
  end
end
redis.call('HSET', KEYS[1], unpack(meta))
return {1, before}
