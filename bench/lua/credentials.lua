-- POST /banking-auth/v1/credentials with the documents' seed body (seed 001).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
dofile(os.getenv("BENCH_LUA_DIR") .. "/namespaces.lua")

wrk.method = "POST"
wrk.path = "/banking-auth/v1/credentials"
wrk.headers["Authorization"] = "Bearer org-a-token"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["account_token"] = "Your account token"
wrk.body = '{"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX", ' ..
           '"provider_data": {"client_id": "Your client ID"}}'

if os.getenv("BENCH_NAMESPACES") then
  function request()
    wrk.headers["X-Sandbox-Namespace"] = next_namespace()
    return wrk.format()
  end
end
