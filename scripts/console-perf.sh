#!/usr/bin/env bash
# Measures console pages against a running server: server time (curl's total
# time on loopback) and page weight. Usage:
#   scripts/console-perf.sh http://127.0.0.1:8080 demo-dave [N] PATH...
# Prints one line per path: p50 and p99 milliseconds over N requests, bytes.
set -euo pipefail
base=$1; token=$2; n=${3:-30}; shift 3
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
binding=$(curl -s -c "$jar" "$base/console/sign-in" | grep -o 'name="binding" value="[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}')
code=$(curl -s -b "$jar" -c "$jar" -o /dev/null -w '%{http_code}' -X POST "$base/console/sign-in" \
    --data "token=$token&binding=$binding&next=")
[ "$code" = 303 ] || { echo "sign-in failed: $code" >&2; exit 1; }
printf '%-48s %9s %9s %9s\n' path p50_ms p99_ms bytes
for path in "$@"; do
    times=$(for _ in $(seq "$n"); do
        curl -s -b "$jar" -o /dev/null -w '%{time_total} %{size_download} %{http_code}\n' "$base$path"
    done)
    status=$(echo "$times" | awk '{print $3}' | sort -u | tr '\n' ' ')
    bytes=$(echo "$times" | awk 'END {print $2}')
    echo "$times" | awk '{print $1 * 1000}' | sort -n | awk -v p="$path" -v b="$bytes" -v s="$status" '
        { v[NR] = $1 } END { printf "%-48s %9.2f %9.2f %9d %s\n", p, v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)], b, (s == "200 " ? "" : "status " s) }'
done
