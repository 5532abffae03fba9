#!/usr/bin/env bash
# Records a CPU profile of one fan-out server over one generator run (server on core 0,
# generator on core 1), for the per-member breakdown in docs/benchmarks.md:
#
#   benches/scripts/profile-fanout.sh SERVER OUT.data [SUBSCRIBERS MESSAGES]
#   perf report -i OUT.data -n --no-children --sort dso,sym --stdio -g none
#
# SCENARIO: `fanout` (default) or `sse`. cpu-clock, not cycles: these virtual machines have no hardware counters.
set -euo pipefail
server=$1 out=$2 subs=${3:-1000} msgs=${4:-1000}
loadgen=${LOADGEN:-target/release/loadgen}
port=$((9600 + RANDOM % 300))
WORKERS=1 taskset -c 0 "$server" "$port" 2>/dev/null &
pid=$!
sleep 0.7
perf record -e cpu-clock -F 4000 -g -p "$pid" -o "$out" >/dev/null 2>&1 &
perf_pid=$!
sleep 0.2
taskset -c 1 "$loadgen" "${SCENARIO:-fanout}" --subscribers "$subs" --messages "$msgs" --payload 64 \
  --addr "127.0.0.1:$port" --server-pid "$pid" >/dev/null 2>&1 || true
kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null || true
kill "$pid"
wait "$pid" 2>/dev/null || true
