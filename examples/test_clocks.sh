#!/usr/bin/env bash
# A job through the offer window (24 hours) and the review window (7 days) in seconds, on a
# test clock (README, "Test clocks"). Needs a running GigCo with GIGCO_TEST_CLOCKS=1 (API,
# worker and beat), e.g. `GIGCO_TEST_CLOCKS=1 .venv/bin/gigco dev` in another shell. JSON
# is read with python3. The suite runs this script (tests/test_walkthrough.py).
#
#   GIGCO_URL=http://127.0.0.1:5000 examples/test_clocks.sh
set -euo pipefail

URL=${GIGCO_URL:-http://127.0.0.1:5000}
WAIT=${WAIT_SECONDS:-60}
RUN=$(date +%s)-$$
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -fsS --max-time 10 -X POST "$URL$1" -H 'Content-Type: application/json' "${@:2}"; }
get() { curl -fsS --max-time 10 "$URL$1" "${@:2}"; }
wait_until() {  # what we wait for, then a command that succeeds once it is so
  local what=$1 began=$SECONDS
  shift
  until "$@"; do
    if [ $((SECONDS - began)) -gt "$WAIT" ]; then
      echo "gave up after $WAIT s waiting for $what: is a worker running?" >&2
      exit 1
    fi
    sleep 0.2
  done
}
status_of() { get "/v1/jobs/$1" -H "Authorization: Bearer $TOKEN" | json '["status"]'; }
has_status() { [ "$(status_of "$1")" = "$2" ]; }
wait_status() { wait_until "job $1 to be $2" has_status "$1" "$2"; echo "job $1: $2"; }
clock_ready() {
  [ "$(get "/v1/test_clocks/$CLOCK" -H "Authorization: Bearer $TOKEN" | json '["status"]')" = ready ]
}
advance() {  # to this time on the clock
  post "/v1/test_clocks/$CLOCK/advance" -H "Authorization: Bearer $TOKEN" \
    -d "{\"frozen_time\": \"$1\"}" > /dev/null
  wait_until "the test clock to reach $1" clock_ready
  echo "the clock stands at $1"
}
at() {  # the clock's start plus a Python timedelta's arguments, say "days=7"
  python3 -c "import datetime as d; print((d.datetime.fromisoformat('$T0') + d.timedelta($1)).isoformat())"
}
read -r LAT LNG < <(python3 -c "import random as r; print(round(r.uniform(-55, 65), 4), round(r.uniform(-170, 170), 4))")

# 1. A consumer and a worker near them sign up.
TOKEN=$(post /v1/consumers -d "{\"name\": \"Ann\", \"email\": \"ann-$RUN@example.com\"}" | json '["token"]')
WORKER_TOKEN=$(post /v1/workers -d "{\"name\": \"Bo\", \"email\": \"bo-$RUN@example.com\",
  \"skills\": [\"plumbing\"], \"location\": {\"lat\": $LAT, \"lng\": $LNG},
  \"service_radius_km\": 25}" | json '["token"]')
trap 'curl -fsS -X PATCH "$URL/v1/workers/me" -H "Authorization: Bearer $WORKER_TOKEN" \
  -H "Content-Type: application/json" -d "{\"available\": false}" > /dev/null || true' EXIT

# 2. The consumer's test clock, standing at now (to the second).
T0=$(python3 -c "import datetime as d; print(d.datetime.now(d.UTC).replace(microsecond=0).isoformat())")
CLOCK=$(post /v1/test_clocks -H "Authorization: Bearer $TOKEN" \
  -d "{\"frozen_time\": \"$T0\", \"name\": \"walkthrough $RUN\"}" | json '["id"]')
echo "test clock $CLOCK at $T0"

# 3. Two jobs on the clock: one offer is left to lapse, the other is taken to its reviews.
START=$(at "days=2")
job() {
  post /v1/jobs -H "Authorization: Bearer $TOKEN" \
    -d "{\"title\": \"Fix the sink\", \"category\": \"plumbing\", \"test_clock\": $CLOCK,
         \"location\": {\"lat\": $LAT, \"lng\": $LNG}, \"scheduled_start\": \"$START\",
         \"estimated_hours\": 2}" | json '["id"]'
}
LAPSING=$(job)
KEPT=$(job)
wait_status "$LAPSING" offered
wait_status "$KEPT" offered
echo "offer expires at $(get "/v1/jobs/$LAPSING" -H "Authorization: Bearer $TOKEN" | json '["offer_expires_at"]')"
post "/v1/jobs/$KEPT/offer/accept" -H "Authorization: Bearer $TOKEN" > /dev/null
offered() {
  get /v1/opportunities -H "Authorization: Bearer $WORKER_TOKEN" \
    | python3 -c "import json,sys; sys.exit(all(o['job_id'] != $KEPT for o in json.load(sys.stdin)))"
}
wait_until "an opportunity on job $KEPT to reach the worker" offered
post "/v1/jobs/$KEPT/opportunity/accept" -H "Authorization: Bearer $WORKER_TOKEN" > /dev/null
wait_status "$KEPT" scheduled
post "/v1/jobs/$KEPT/start" -H "Authorization: Bearer $WORKER_TOKEN" > /dev/null
post "/v1/jobs/$KEPT/complete" -H "Authorization: Bearer $WORKER_TOKEN" > /dev/null
wait_status "$KEPT" review_pending

# 4. A day and an hour later on the clock, the untouched offer has lapsed.
advance "$(at "days=1, hours=1")"
wait_status "$LAPSING" expired

# 5. Seven days after the reviews were asked for, the window closes the job unreviewed.
advance "$(at "days=8")"
wait_status "$KEPT" closed
get "/v1/jobs/$KEPT/events" -H "Authorization: Bearer $TOKEN" \
  | python3 -c "import json,sys; [print(e['seq'], e['created_at'], e['type']) for e in json.load(sys.stdin)]"
