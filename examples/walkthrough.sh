#!/usr/bin/env bash
# A whole job lifecycle over the HTTP API, from sign-up to a closed job, with curl.
# Needs a running GigCo (API, worker and beat), e.g. `.venv/bin/gigco dev` in another shell.
# JSON is read with python3 (no jq needed). The test suite runs this script
# (tests/test_walkthrough.py), so what the README shows keeps working.
#
#   GIGCO_URL=http://127.0.0.1:5000 examples/walkthrough.sh
#
# It can run again on the same database: each run signs up new accounts (unique emails) at
# its own random spot on the map, so no earlier run's worker is ever nearer, and its worker
# becomes unavailable when the script ends, so later jobs are never offered to it. Each wait
# gives up after WAIT_SECONDS (60) and says what it was waiting for.
set -euo pipefail

URL=${GIGCO_URL:-http://127.0.0.1:5000}
WAIT=${WAIT_SECONDS:-60}
RUN=$(date +%s)-$$                       # unique emails, so the script can run again
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -fsS --max-time 10 -X POST "$URL$1" -H 'Content-Type: application/json' "${@:2}"; }
get() { curl -fsS --max-time 10 "$URL$1" "${@:2}"; }
wait_until() {  # what we wait for, then a command that succeeds once it is so
  local what=$1 began=$SECONDS
  shift
  seen=""
  until "$@"; do
    # SECONDS counts whole seconds: waiting for one more makes sure WAIT have passed.
    if [ $((SECONDS - began)) -gt "$WAIT" ]; then
      echo "gave up after $WAIT s waiting for $what${seen:+ (it is $seen)}:" \
        "are a worker and beat running?" >&2
      exit 1
    fi
    sleep 0.5
  done
}
has_status() {  # job id, wanted status, token
  seen=$(get "/v1/jobs/$1" -H "Authorization: Bearer $3" | json '["status"]')
  [ "$seen" = "$2" ]
}
wait_status() {  # job id, wanted status, token
  wait_until "job $1 to be $2" has_status "$@"
  echo "job $1: $2"
}

# A random spot of the map (away from the poles), this run's own.
read -r LAT LNG < <(python3 -c "import random as r; print(round(r.uniform(-55, 65), 4), round(r.uniform(-170, 170), 4))")

# 1. A consumer signs up; the token is shown once, so keep it.
CONSUMER=$(post /v1/consumers -d "{\"name\": \"Ann\", \"email\": \"ann-$RUN@example.com\"}")
TOKEN=$(echo "$CONSUMER" | json '["token"]')

# 2. A worker near the job signs up (plumbing, 25 km around this run's spot); when the
#    script ends, however it ends, the worker becomes unavailable.
WORKER=$(post /v1/workers -d "{\"name\": \"Bo\", \"email\": \"bo-$RUN@example.com\",
  \"skills\": [\"plumbing\"], \"location\": {\"lat\": $LAT, \"lng\": $LNG},
  \"service_radius_km\": 25}")
WORKER_TOKEN=$(echo "$WORKER" | json '["token"]')
retire() {
  curl -fsS --max-time 10 -X PATCH "$URL/v1/workers/me" -H "Authorization: Bearer $WORKER_TOKEN" \
    -H 'Content-Type: application/json' -d '{"available": false}' > /dev/null || true
}
trap retire EXIT

# 3. The consumer posts a job; GigCo prices it and offers the price.
START=$(python3 -c "import datetime as d; print((d.datetime.now(d.UTC) + d.timedelta(days=2)).strftime('%Y-%m-%dT10:00:00Z'))")
JOB_ID=$(post /v1/jobs -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: walkthrough-$RUN" \
  -d "{\"title\": \"Fix the sink\", \"category\": \"plumbing\",
       \"location\": {\"lat\": $LAT, \"lng\": $LNG}, \"scheduled_start\": \"$START\",
       \"estimated_hours\": 2}" | json '["id"]')
wait_status "$JOB_ID" offered "$TOKEN"
get "/v1/jobs/$JOB_ID" -H "Authorization: Bearer $TOKEN" | json '["price_cents"]' | sed 's/^/price (cents): /'

# 4. The consumer accepts the offer; matching offers the job to the worker.
post "/v1/jobs/$JOB_ID/offer/accept" -H "Authorization: Bearer $TOKEN" > /dev/null
offered() {
  get /v1/opportunities -H "Authorization: Bearer $WORKER_TOKEN" \
    | python3 -c "import json,sys; sys.exit(all(o['job_id'] != $JOB_ID for o in json.load(sys.stdin)))"
}
wait_until "an opportunity on job $JOB_ID to reach the worker" offered
echo "the worker has an opportunity on job $JOB_ID"

# 5. The worker takes it; GigCo schedules the job.
post "/v1/jobs/$JOB_ID/opportunity/accept" -H "Authorization: Bearer $WORKER_TOKEN" > /dev/null
wait_status "$JOB_ID" scheduled "$TOKEN"

# 6. The worker starts and completes the work; GigCo takes the payment and asks for reviews.
post "/v1/jobs/$JOB_ID/start" -H "Authorization: Bearer $WORKER_TOKEN" > /dev/null
post "/v1/jobs/$JOB_ID/complete" -H "Authorization: Bearer $WORKER_TOKEN" > /dev/null
wait_status "$JOB_ID" review_pending "$TOKEN"

# 7. Both review; the job closes.
post "/v1/jobs/$JOB_ID/reviews" -H "Authorization: Bearer $TOKEN" \
  -d '{"rating": 5, "comment": "Quick and tidy."}' > /dev/null
post "/v1/jobs/$JOB_ID/reviews" -H "Authorization: Bearer $WORKER_TOKEN" \
  -d '{"rating": 5, "comment": "Friendly client."}' > /dev/null
wait_status "$JOB_ID" closed "$TOKEN"

# 8. The job's whole history.
get "/v1/jobs/$JOB_ID/events" -H "Authorization: Bearer $TOKEN" \
  | python3 -c "import json,sys; [print(e['seq'], e['type'], e['actor']) for e in json.load(sys.stdin)]"
