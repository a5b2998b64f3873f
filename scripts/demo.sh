#!/usr/bin/env bash
# Warden's main job on the bundled example: check the governance pack, run its
# decision tests, and decide a few requests. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
warden=./target/release/warden
pack=examples/support-refunds

# Prints a command the way you would type it, then runs it.
step() {
    printf '\n$'
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./,:=-]+$ ]]; then printf ' %s' "$arg"; else printf " '%s'" "${arg//\'/\'\\\'\'}"; fi
    done
    printf '\n'
    "$@"
}

step "$warden" validate "$pack"
step "$warden" test "$pack"
refund() { printf '{"order_id":"ord_1001","customer_id":"cus_42","amount_cents":%s,"reason":"damaged"}' "$1"; }
step "$warden" decide "$pack" --agent support-bot --tool stripe.refund --args "$(refund 4500)"
step "$warden" decide "$pack" --agent support-bot --tool stripe.refund --args "$(refund 25000)"
step "$warden" decide "$pack" --agent support-bot --tool stripe.refund --args "$(refund 25000)" --approvals finance
step "$warden" decide "$pack" --agent intern-bot --tool stripe.refund --args "$(refund 500)" --explain

# Evidence: record runs in a tamper-evident audit log, query it, rebuild a run,
# then edit the database behind Warden's back and watch verify catch it.
data=target/demo-data
rm -rf "$data"
step "$warden" decide "$pack" --agent support-bot --tool stripe.refund --args "$(refund 25000)" \
    --context '{"workflow":"refund-request","run":"run-demo","trigger":{"source":"ticket","reference":"ZD-1"}}' --record "$data"
step "$warden" audit seed --data "$data" --runs 200
step "$warden" audit verify --data "$data"
step "$warden" audit query --data "$data" --tool stripe.refund --decision approval_required --limit 5
run=$("$warden" audit query --data "$data" --kind approval_recorded --limit 1 --json | sed -n 's/.*"run": "\(run-[0-9]*\)".*/\1/p' | head -1)
step "$warden" audit timeline "$run" --data "$data"
step "$warden" audit export --data "$data" --out "$data/audit.jsonl"
step "$warden" audit verify --export "$data/audit.jsonl" --public-key "$("$warden" audit public-key --data "$data")"
if command -v sqlite3 >/dev/null; then
    step sqlite3 "$data/warden.db" "UPDATE evidence SET body = replace(body, 'refund-request', 'refund-requesT') WHERE seq = 3"
    step "$warden" audit verify --data "$data" || true
else
    echo "(install sqlite3 to see verify catch an edit of the database)"
fi

# The gateway: start it on the example pack, run the refund workflow over HTTP
# in enforce mode (the example's tools use the mock connector), then stop it.
if command -v curl >/dev/null; then
    gw=target/demo-gateway
    rm -rf "$gw"
    "$warden" serve --pack "$pack" --data "$gw" --listen 127.0.0.1:0 --no-watch > "$gw.log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 1 50); do grep -q listening "$gw.log" 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$gw.log")
    post() { curl -s -X POST "$url$1" -H "Authorization: Bearer $2" -H 'content-type: application/json' -d "$3"; echo; }
    echo; echo "\$ POST $url/v1/runs (as support-bot)"
    run=$(post /v1/runs demo-support-bot '{"workflow":"refund-request","trigger":{"source":"ticket","reference":"T-1042"}}' | sed -n 's/.*"run_id":"\([^"]*\)".*/\1/p')
    echo "run $run"
    for body in \
        '{"tool":"stripe.refund","mode":"enforce","run_id":"RUN","arguments":{"order_id":"ord_1","customer_id":"cus_42","amount_cents":5000,"reason":"damaged"}}' \
        '{"tool":"crm.lookup_customer","mode":"enforce","run_id":"RUN","arguments":{"customer_id":"cus_42"}}' \
        '{"tool":"stripe.refund","mode":"enforce","run_id":"RUN","arguments":{"order_id":"ord_1","customer_id":"cus_42","amount_cents":5000,"reason":"damaged"}}'; do
        echo; echo "\$ POST /v1/actions ${body//RUN/$run}" | cut -c1-160
        post /v1/actions demo-support-bot "${body//RUN/$run}" | sed -n 's/.*"tool":"\([^"]*\)".*"status":"\([^"]*\)","code":\([^,]*\),.*/\1 → \2 (code \3)/p'
    done
    # An approval: a $500 refund waits for finance; dave approves with the CLI;
    # policy is evaluated again and the refund executes once.
    echo; echo "\$ POST /v1/actions (a \$500 refund, as support-bot)"
    answer=$(post /v1/actions demo-support-bot '{"tool":"stripe.refund","mode":"enforce","arguments":{"order_id":"ord_5","customer_id":"cus_42","amount_cents":50000,"reason":"damaged"}}')
    echo "$answer" | sed -n 's/.*"status":"\([^"]*\)".*"approval_id":"\([^"]*\)".*/status \1, approval \2/p'
    approval=$(echo "$answer" | sed -n 's/.*"approval_id":"\([^"]*\)".*/\1/p' | head -1)
    action=$(echo "$answer" | sed -n 's/.*"action_id":"\([^"]*\)".*/\1/p' | head -1)
    WARDEN_SERVER=$url WARDEN_TOKEN=demo-dave step "$warden" approvals list
    WARDEN_SERVER=$url WARDEN_TOKEN=demo-dave step "$warden" approvals approve "$approval" --comment "demo"
    echo; echo "\$ GET /v1/actions/$action?wait=10s"
    curl -s "$url/v1/actions/$action?wait=10s" -H 'Authorization: Bearer demo-support-bot' | sed -n 's/.*"status":"\([^"]*\)".*/status \1/p'
    kill -TERM "$gw_pid"; wait "$gw_pid" || true
    step "$warden" audit timeline "$run" --data "$gw"
fi
