-- Drop acknowledged entries from the head of a group's outbox, in order, and nothing else.
-- KEYS[1]: the outbox list; ARGV: the ids of the entries the broker acknowledged. An entry is its
-- id (a UUID the worker made), a newline, then the rest: ids are compared exactly, never as text
-- inside JSON. Stops at the first entry that is not acknowledged (another writer's, or one still to
-- publish); returns how many were dropped.
local acknowledged = {}
for i = 1, #ARGV do
  acknowledged[ARGV[i]] = true
end
local dropped = 0
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head then
    break
  end
  local newline = string.find(head, '\n', 1, true)
  if not newline or not acknowledged[string.sub(head, 1, newline - 1)] then
    break
  end
  redis.call('LPOP', KEYS[1])
  dropped = dropped + 1
end
return dropped
