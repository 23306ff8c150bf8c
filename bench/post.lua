-- wrk script: POST with an empty body (the job's default arguments).
wrk.method = "POST"
wrk.body = ""
