-- POST /baas/pix/keys: every request a new random key, on accounts that have room.
-- Argument: a file of account keys (one a line), made by the benchmark with room for every request
-- it can send; requests go round-robin over them, so each account gets at most its share. A line
-- "NAMESPACE ACCOUNT" is an account of that namespace (the namespaced workload).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local accounts = {}
local counter, stride = 0, 1
local started = 0

-- Runs in the main state: each thread gets its index (a global in the thread's own state).
function setup(thread)
  thread:set("bench_thread_index", started)
  started = started + 1
end

-- Runs in each thread: threads take turns on the same list, so no account is used past its share.
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      local namespace, account = line:match("^(%S+) (%S+)$")
      table.insert(accounts, namespace and {namespace, account} or {nil, line})
    end
  end
  counter = bench_thread_index or 0
  stride = tonumber(args[2]) or 1
end

local headers = {["Authorization"] = "Bearer org-a-token", ["Content-Type"] = "application/json"}

function request()
  local entry = accounts[(counter % #accounts) + 1]
  counter = counter + stride
  headers["X-Sandbox-Namespace"] = entry[1]
  return wrk.format("POST", "/baas/pix/keys", headers,
    '{"account_key": "' .. entry[2] .. '", "pix_key_type": "random_key"}')
end
