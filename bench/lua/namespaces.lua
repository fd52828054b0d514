-- The namespaced workloads (BENCH_NAMESPACES=K): request i goes to namespace "bench-" .. (i % K), as K
-- parallel CI jobs on one sandbox would send them. Unset or 0: no header (the default namespace).
local count = tonumber(os.getenv("BENCH_NAMESPACES") or "0") or 0
local names = {}
for i = 0, count - 1 do names[i] = "bench-" .. i end
local turn = 0

-- The namespace of the next request, or nil.
function next_namespace()
  if count == 0 then return nil end
  turn = turn + 1
  return names[turn % count]
end
