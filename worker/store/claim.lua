-- Claim up to ARGV[3] members of the term-end schedule (KEYS[1]) due at ARGV[1] (epoch seconds):
-- each claimed member's score moves to ARGV[2], the end of the claimer's lease, so no other
-- instance claims it until then. The claimer removes it once its term-end event is acknowledged;
-- if the claimer dies, the lease runs out and another instance claims it.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
