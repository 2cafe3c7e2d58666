#!/usr/bin/env bash
# A whole job lifecycle over the HTTP API, from sign-up to a closed job, with curl.
# Needs a running GigCo (API, worker and beat), e.g. `.venv/bin/gigco dev` in another shell.
# JSON is read with python3 (no jq needed). The test suite runs this script
# (tests/test_walkthrough.py), so what the README shows keeps working.
#
#   GIGCO_URL=http://127.0.0.1:5000 examples/walkthrough.sh
set -euo pipefail

URL=${GIGCO_URL:-http://127.0.0.1:5000}
RUN=$(date +%s)-$$                       # unique emails, so the script can run again
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -fsS -X POST "$URL$1" -H 'Content-Type: application/json' "${@:2}"; }
get() { curl -fsS "$URL$1" "${@:2}"; }
wait_status() {  # job id, wanted status, token
  for _ in $(seq 1 120); do
    status=$(get "/v1/jobs/$1" -H "Authorization: Bearer $3" | json '["status"]')
    [ "$status" = "$2" ] && { echo "job $1: $status"; return 0; }
    sleep 0.5
  done
  echo "job $1 is $status, not $2, after 60 s: are a worker and beat running?" >&2
  exit 1
}

# 1. A consumer signs up; the token is shown once, so keep it.
CONSUMER=$(post /v1/consumers -d "{\"name\": \"Ann\", \"email\": \"ann-$RUN@example.com\"}")
TOKEN=$(echo "$CONSUMER" | json '["token"]')

# 2. A worker near the job signs up (plumbing, 25 km around Berlin).
WORKER=$(post /v1/workers -d "{\"name\": \"Bo\", \"email\": \"bo-$RUN@example.com\",
  \"skills\": [\"plumbing\"], \"location\": {\"lat\": 52.52, \"lng\": 13.405},
  \"service_radius_km\": 25}")
WORKER_TOKEN=$(echo "$WORKER" | json '["token"]')

# 3. The consumer posts a job; GigCo prices it and offers the price.
START=$(python3 -c "import datetime as d; print((d.datetime.now(d.UTC) + d.timedelta(days=2)).strftime('%Y-%m-%dT10:00:00Z'))")
JOB_ID=$(post /v1/jobs -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: walkthrough-$RUN" \
  -d "{\"title\": \"Fix the sink\", \"category\": \"plumbing\",
       \"location\": {\"lat\": 52.5, \"lng\": 13.4}, \"scheduled_start\": \"$START\",
       \"estimated_hours\": 2}" | json '["id"]')
wait_status "$JOB_ID" offered "$TOKEN"
get "/v1/jobs/$JOB_ID" -H "Authorization: Bearer $TOKEN" | json '["price_cents"]' | sed 's/^/price (cents): /'

# 4. The consumer accepts the offer; matching offers the job to the worker.
post "/v1/jobs/$JOB_ID/offer/accept" -H "Authorization: Bearer $TOKEN" > /dev/null
for _ in $(seq 1 120); do
  OFFERED=$(get /v1/opportunities -H "Authorization: Bearer $WORKER_TOKEN" \
    | python3 -c "import json,sys; print(any(o['job_id'] == $JOB_ID for o in json.load(sys.stdin)))")
  [ "$OFFERED" = True ] && break
  sleep 0.5
done
[ "$OFFERED" = True ] || { echo "no opportunity reached the worker" >&2; exit 1; }
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
