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
