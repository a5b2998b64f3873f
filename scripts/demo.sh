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
