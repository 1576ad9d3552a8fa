-- wrk script for every bench run: POST of $WRK_BODY as JSON (bench/bench.sh sets it per path).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.headers["anthropic-version"] = os.getenv("WRK_ANTHROPIC_VERSION")
wrk.body = os.getenv("WRK_BODY")
