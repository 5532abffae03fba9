#!/usr/bin/env bash
# Same-run A/B of WebSocket fan-out servers, as docs/benchmarks.md quotes it: each round runs
# every server once, pinned to core 0 (WORKERS=1), the generator on core 1, and prints the
# generator's deliveries per server CPU-second, its p99 latency, the missing deliveries, and
# the server's user/system CPU ticks (10 ms, /proc/PID/stat) over the whole generator run.
#
#   benches/scripts/ab-fanout.sh ROUNDS SUBSCRIBERS MESSAGES SERVER...
#
# SERVER: an executable taking the port as its first argument (a bench_server binary, or a
# wrapper such as `exec node benches/peers/uws/server.js "$@"`). LOADGEN: the generator
# (default target/release/loadgen; `cargo build --release -p benches --bins`). SCENARIO:
# `fanout` (default, WebSocket `/fanout`) or `sse` (`GET /sse` fed by `POST /publish`).
set -euo pipefail
rounds=$1 subs=$2 msgs=$3
shift 3
loadgen=${LOADGEN:-target/release/loadgen}
port=${PORT_BASE:-9400}
for _ in $(seq 1 "$rounds"); do
  for server in "$@"; do
    port=$((port + 1))
    WORKERS=1 taskset -c 0 "$server" "$port" 2>/dev/null &
    pid=$!
    sleep 0.7
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    out=$(taskset -c 1 "$loadgen" "${SCENARIO:-fanout}" --subscribers "$subs" --messages "$msgs" \
      --payload 64 --addr "127.0.0.1:$port" --server-pid "$pid" 2>/dev/null || true)
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    figures=$(printf '%s' "$out" | python3 -c '
import json, sys
m = json.load(sys.stdin)["metrics"]
print("%.3fM/cpu-s p99=%.1fms missing=%s" % (m["deliveries_per_cpu_s"] / 1e6, m["p99_us"] / 1000, m.get("missing")))
' 2>/dev/null || echo "no result")
    echo "$(basename "$server") $figures user=$((u1 - u0)) sys=$((s1 - s0))"
  done
done
