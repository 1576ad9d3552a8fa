-- wrk script: POST the JSON body in $WRK_BODY (with a bearer key, $WRK_KEY or sk-bench).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("WRK_KEY") or "sk-bench")
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.body = os.getenv("WRK_BODY")
