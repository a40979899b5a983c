#!/usr/bin/env bash
# Does --memcache pay when the database is a network hop away? (issue 14
# target 7.) Runs two weave servers on MariaDB (or PostgreSQL), each behind
# its own fault proxy adding LATENCY to every chunk in each direction, one
# with --memcache (a memcached on a free port of 127.0.0.1) and one without,
# each on its own fresh database. Each mix has its own USERS accounts (uids
# 1…, 1001…, …), which FILL molotov sessions fill first on both servers: a
# fixed amount of work, so both servers hold the same records whatever
# their speed, and no mix reads what another mix's runs wrote (the read
# mixes ask for records 1 min–1 h old, so data written by the runs before
# them would grow their reads pair after pair). Then closed-loop runs
# alternate without/with the cache, PAIRS pairs of each mix. Each run
# prints sessions/s, request and session p50/p99, weave's CPU seconds per
# 1,000 sessions, database round trips per session and per request (chunks
# the proxy forwarded to the database: load-independent; on MariaDB one
# per statement, more for a statement too big for one chunk, such as a
# large upload), and, with the cache, its hit ratio from /metrics.
# Medians per mix and configuration at the end, then each request kind's
# p50 and count per session (where a session's time goes). CONCURRENCY=1
# or 2 measures below saturation, where a request waits for the database's
# distance rather than for the two cores. Targets only 127.0.0.1.
#
#   scripts/bench-cache.sh [PAIRS] [DURATION]      (defaults: 3 30s)
#
# Environment: DB=mariadb|postgres (default mariadb), LATENCY (default 500us
# each way: a 1 ms round trip), USERS (50), CONCURRENCY (16), FILL (500
# molotov sessions per mix's accounts before the pairs), MIXES ("molotov
# firefox-reads").
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
duration=${2:-30s}
db=${DB:-mariadb}
latency=${LATENCY:-500us}
users=${USERS:-50}
concurrency=${CONCURRENCY:-16}
fill=${FILL:-500}
mixes=${MIXES:-molotov firefox-reads}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  local name
  while read -r name; do
    if [ "$db" = mariadb ]; then mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $name" || true
    else psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $name" || true; fi
  done < <(cat "$work/databases" 2>/dev/null)
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/weave" ./cmd/weave
go build -o "$work/faultproxy" ./internal/faultproxy/cmd/faultproxy

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

case $db in
mariadb) dbaddr=127.0.0.1:3306 ;;
postgres) dbaddr=127.0.0.1:5432 ;;
*) echo "DB=$db: want mariadb or postgres" >&2; exit 2 ;;
esac

# proxy NAME: a fault proxy to the database with the latency; sets
# proxy_pid_NAME and proxy_port_NAME.
proxy() {
  "$work/faultproxy" -target "$dbaddr" -latency "$latency" >"$work/proxy-$1.out" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 50); do [ -s "$work/proxy-$1.out" ] && break; sleep 0.1; done
  local addr
  addr=$(head -1 "$work/proxy-$1.out")
  printf -v "proxy_pid_$1" %s "$pid"
  printf -v "proxy_port_$1" %s "${addr##*:}"
}
# Round trips the proxy NAME has forwarded so far.
proxy_requests() {
  local pid_var="proxy_pid_$1" n
  n=$(grep -c '^requests' "$work/proxy-$1.out" || true)
  kill -USR1 "${!pid_var}"
  for _ in $(seq 50); do
    [ "$(grep -c '^requests' "$work/proxy-$1.out" || true)" -gt "$n" ] && break
    sleep 0.05
  done
  grep '^requests' "$work/proxy-$1.out" | tail -1 | cut -d' ' -f2
}

# database PORT: create a fresh database through the proxy at PORT and
# print its URL.
database() {
  local name="weavecache_$(date +%s)_$RANDOM"
  echo "$name" >>"$work/databases"
  if [ "$db" = mariadb ]; then
    mysql -h127.0.0.1 -uroot -e "CREATE DATABASE $name"
    echo "mysql://root@127.0.0.1:$1/$name"
  else
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $name"
    echo "postgres://postgres@127.0.0.1:$1/$name?sslmode=disable"
  fi
}

# The round trip the proxy adds, measured with the database's own client
# (200 trivial statements on one connection, through the proxy and direct).
rtt() {
  local port=$1 t0 t1 t2
  t0=$(date +%s%N)
  if [ "$db" = mariadb ]; then
    yes 'SELECT 1;' | head -200 | mysql -h127.0.0.1 -P"$port" -uroot -N >/dev/null
    t1=$(date +%s%N)
    yes 'SELECT 1;' | head -200 | mysql -h127.0.0.1 -uroot -N >/dev/null
  else
    yes 'SELECT 1;' | head -200 | psql -h 127.0.0.1 -p "$port" -U postgres -qAt >/dev/null
    t1=$(date +%s%N)
    yes 'SELECT 1;' | head -200 | psql -h 127.0.0.1 -U postgres -qAt >/dev/null
  fi
  t2=$(date +%s%N)
  python3 -c "print(f'{(($t1-$t0)-($t2-$t1))/200/1e6:.2f}')"
}

mcport=$(freeport)
memcached -l 127.0.0.1 -p "$mcport" -U 0 -m 256 -t 1 $([ "$(id -u)" = 0 ] && echo -u nobody) &
pids+=("$!")

# serve NAME [flags…]: weave on its own database behind its own proxy;
# sets pid_NAME, port_NAME, mport_NAME.
serve() {
  local name=$1; shift
  proxy "$name"
  local pp="proxy_port_$name" port mport
  port=$(freeport)
  mport=$(freeport)
  "$work/weave" serve --listen "127.0.0.1:$port" --data-dir "$work/data-$name" \
    --database-url "$(database "${!pp}")" --metrics-listen "127.0.0.1:$mport" \
    --log-level error --max-conns-per-client 0 "$@" >"$work/serve-$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/__heartbeat__" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/__heartbeat__" >/dev/null || { cat "$work/serve-$name.log" >&2; exit 1; }
  printf -v "pid_$name" %s "$pid"
  printf -v "port_$name" %s "$port"
  printf -v "mport_$name" %s "$mport"
}

for _ in $(seq 50); do (: >"/dev/tcp/127.0.0.1/$mcport") 2>/dev/null && break; sleep 0.1; done
serve nocache
serve memcache --memcache "127.0.0.1:$mcport"

# Cache lookups by outcome and memcached round trips so far:
# "hit miss bypass roundtrips".
lookups() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    /^weave_cache_lookups_total\{/ && /pool="primary"/ {
      match($0, /outcome="[a-z]+"/); o = substr($0, RSTART + 9, RLENGTH - 10); n[o] += $NF }
    /^weave_cache_roundtrip_duration_seconds_count\{/ && /pool="primary"/ { rt += $NF }
    END { printf "%d %d %d %d\n", n["hit"], n["miss"], n["bypass"], rt }'
}

results="$work/results.tsv"
# run NAME MIX FIRST_UID DURATION|SESSIONS [report]: one closed-loop run
# against server NAME, for a duration (30s) or a number of sessions (1000).
run() {
  local name=$1 mix=$2 first=$3 dur=$4 report=${5:-}
  local pid_var="pid_$name" port_var="port_$name" mport_var="mport_$name"
  local rt0 lk0 rt1 lk1 amount=(--duration "$dur")
  [[ $dur =~ ^[0-9]+$ ]] && amount=(--sessions "$dur" --duration 0)
  rt0=$(proxy_requests "$name")
  lk0=$(lookups "${!mport_var}")
  "$work/weave" loadtest --mode direct --target "http://127.0.0.1:${!port_var}" \
    --node-secret-file "$work/data-$name/master-secret" --users "$users" --first-uid "$first" \
    --concurrency "$concurrency" --closed-loop --mix "$mix" "${amount[@]}" --seed 7 --server-pid "${!pid_var}" --json \
    >"$work/run.json" 2>"$work/run.err" || echo "   ($name $mix: the run reported errors)"
  rt1=$(proxy_requests "$name")
  lk1=$(lookups "${!mport_var}")
  [ -n "$report" ] || return 0
  python3 - "$work/run.json" "$name" "$mix" "$rt0" "$rt1" "$lk0" "$lk1" "$(cut -d' ' -f1 /proc/loadavg)" "$work/kinds.tsv" >>"$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
name, mix = sys.argv[2], sys.argv[3]
rt = int(sys.argv[5]) - int(sys.argv[4])
l0, l1 = [list(map(int, a.split())) for a in sys.argv[6:8]]
hit, miss, byp, mcrt = (b - a for a, b in zip(l0, l1))
se, t = r["sessions"], r["total"]
done = max(1, se["completed"])
cpu = (r.get("server_cpu") or {}).get("cpu_seconds_per_1000_sessions", float("nan"))
ratio = hit / (hit + miss + byp) if hit + miss + byp else float("nan")
print("\t".join(str(x) for x in [mix, name, f"{se['per_second']:.1f}", f"{t['p50_ms']:.2f}", f"{t['p99_ms']:.1f}",
      f"{se['p50_ms']:.1f}", f"{se['p99_ms']:.1f}", f"{cpu:.2f}", f"{rt / done:.2f}", f"{rt / max(1, t['count']):.2f}",
      f"{ratio:.2f}", f"{mcrt / done:.2f}", f"{r['bytes_received'] / done / 1024:.1f}", t["errors"], sys.argv[8]]))
with open(sys.argv[9], "a") as k:
    for q in r["requests"]:
        k.write("\t".join(str(x) for x in [mix, name, q["kind"], q["p50_ms"], q["count"] / done]) + "\n")
PY
  tail -1 "$results" | awk -F'\t' '{printf "   %-13s %-8s %7s sessions/s  request p50 %6s ms p99 %6s ms  session p50 %6s ms p99 %6s ms  CPU %5s s/1k sessions  DB round trips %6s/session %5s/request  hit ratio %s  memcached round trips %s/session  received %s KiB/session  errors %s  load %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15}'
}

echo "== weave on $db, ${latency} each way through the fault proxy (measured added round trip: $(rtt "$proxy_port_nocache") ms)"
echo "   $users users, concurrency $concurrency, closed loop, $pairs pairs of $duration per mix; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Each mix's own accounts: uids first_uid[MIX]…+USERS-1.
declare -A first_uid
i=0
for mix in $mixes; do first_uid[$mix]=$((1 + 1000 * i)); i=$((i + 1)); done
((users <= 1000)) || { echo "USERS=$users: at most 1000 (one block of uids per mix)" >&2; exit 2; }
echo "-- filling each mix's accounts: $fill molotov sessions on each server"
for mix in $mixes; do
  run nocache molotov "${first_uid[$mix]}" "$fill"
  run memcache molotov "${first_uid[$mix]}" "$fill"
done
printf 'mix\tconfig\tsessions_s\treq_p50\treq_p99\tsess_p50\tsess_p99\tcpu_1k\trt_session\trt_request\thit_ratio\tmc_session\tkib_session\terrors\tload\n' >"$results"
for i in $(seq "$pairs"); do
  for mix in $mixes; do
    echo "-- pair $i, $mix"
    run nocache "$mix" "${first_uid[$mix]}" "$duration" report
    run memcache "$mix" "${first_uid[$mix]}" "$duration" report
  done
done

echo "== medians over $pairs pairs (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cols = ["sessions_s", "req_p50", "req_p99", "sess_p50", "sess_p99", "cpu_1k", "rt_session", "rt_request", "hit_ratio", "mc_session", "kib_session"]
print("| mix | config | sessions/s | request p50 ms | request p99 ms | session p50 ms | session p99 ms | weave CPU s / 1,000 sessions | DB round trips / session | / request | hit ratio | memcached round trips / session | KiB received / session |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
med = {}
for mix in dict.fromkeys(r["mix"] for r in rows):
    for cfg in ["nocache", "memcache"]:
        rs = [r for r in rows if r["mix"] == mix and r["config"] == cfg]
        m = {c: statistics.median(float(r[c]) for r in rs) for c in cols}
        med[mix, cfg] = m
        print(f"| {mix} | {'with memcached' if cfg == 'memcache' else 'without cache'} | " +
              " | ".join(f"{m[c]:.2f}" if c not in ("hit_ratio", "mc_session") or cfg == "memcache" else "–" for c in cols) + " |")
for mix in dict.fromkeys(r["mix"] for r in rows):
    a, b = med[mix, "nocache"], med[mix, "memcache"]
    print(f"{mix}: with/without sessions/s {b['sessions_s'] / a['sessions_s']:.2f}x, request p50 {100 * (b['req_p50'] / a['req_p50'] - 1):+.0f} %, "
          f"DB round trips per session {a['rt_session']:.2f} -> {b['rt_session']:.2f}")
PY
echo "== request p50 ms by kind (medians over the pairs), and requests of the kind per session"
python3 - "$work/kinds.tsv" <<'PY'
import collections, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    mix, cfg, kind, p50, per = line.rstrip("\n").split("\t")
    v[mix, kind, cfg].append((float(p50), float(per)))
print("| mix | request | p50 ms without cache | p50 ms with memcached | per session |")
print("|---|---|---|---|---|")
for mix, kind in dict.fromkeys((m, k) for m, k, _ in v):
    a, b = v.get((mix, kind, "nocache"), []), v.get((mix, kind, "memcache"), [])
    med = lambda xs, i: f"{statistics.median(x[i] for x in xs):.2f}" if xs else "–"
    print(f"| {mix} | {kind} | {med(a, 0)} | {med(b, 0)} | {med(a or b, 1)} |")
PY
echo "== the cached server's lookups by operation and outcome, and memcached round trips by command (whole run, fill included)"
curl -sf "http://127.0.0.1:$mport_memcache/metrics" |
  grep -E '^weave_cache_(lookups_total|roundtrip_duration_seconds_count)\{' | grep 'pool="primary"' |
  sed -E 's/pool="primary",?//; s/,\}/}/; s/^weave_cache_(lookups_total|roundtrip_duration_seconds_count)\{(.*)\} /\1 \2 /' | sort
