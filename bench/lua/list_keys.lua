-- GET /baas/pix/keys of the seed account.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
dofile(os.getenv("BENCH_LUA_DIR") .. "/namespaces.lua")

wrk.method = "GET"
wrk.path = "/baas/pix/keys?account_key=6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"
wrk.headers["Authorization"] = "Bearer org-a-token"

if os.getenv("BENCH_NAMESPACES") then
  function request()
    wrk.headers["X-Sandbox-Namespace"] = next_namespace()
    return wrk.format()
  end
end
