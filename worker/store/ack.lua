-- Drop published entries from the head of an outbox, in order, and nothing else.
-- KEYS[1]: the outbox list; ARGV: the ids of the published entries, oldest first. Each entry is a
-- JSON array whose first element is its id, so the head is matched by prefix without decoding.
local dropped = 0
for i = 1, #ARGV do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head or string.sub(head, 1, #ARGV[i] + 3) ~= '["' .. ARGV[i] .. '"' then
    break
  end
  redis.call('LPOP', KEYS[1])
  dropped = dropped + 1
end
return dropped
