#!/usr/bin/env bash
# Issue 14 target 6: weave on MariaDB and PostgreSQL at its limit, with the
# database on this machine and with 1 ms of round trip injected between
# weave and the database by the fault proxy (internal/faultproxy/cmd/
# faultproxy, 0.5 ms each way), as a production fleet with the database on
# another host sees it. Each configuration runs the closed loop of the
# load model's session mix (weave loadtest --closed-loop, direct mode,
# 50 users, 16 sessions at a time) on a fresh database; the configurations
# alternate, PAIRS rounds, and the summary gives each one's median.
# Targets only 127.0.0.1.
#
#   scripts/bench-sql.sh [DURATION]           (default 60s; PAIRS=3)
#   ONLY="mariadb mariadb+1ms" PAIRS=1 scripts/bench-sql.sh 20s
#
# Printed per run: sessions/s, session p50/p99, request p50/p99, errors,
# weave's CPU seconds per 1,000 sessions, database server CPU seconds per
# 1,000 sessions, MariaDB statements per session (user statistics of the
# run's own user; the script turns userstat on for the run) or PostgreSQL
# transactions per session, and the load average before the run. JSON
# reports go to bench-results/sql-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60s}
pairs=${PAIRS:-3}
users=${USERS:-50}
concurrency=${CONCURRENCY:-16}
mix=${MIX:-molotov}
configs=${ONLY:-mariadb mariadb+1ms postgres postgres+1ms}
out=bench-results
mkdir -p "$out"
work=$(mktemp -d)
dbs=()
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  for d in "${dbs[@]}"; do
    case $d in
      mysql:*) mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${d#mysql:}; DROP USER IF EXISTS '${d#mysql:}'@'%'" || true ;;
      postgres:*) psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ${d#postgres:}" || true ;;
    esac
  done
  [ -n "$userstat" ] && mysql -h127.0.0.1 -uroot -e "SET GLOBAL userstat=$userstat" || true
  rm -rf "$work"
}
userstat=""
trap cleanup EXIT

if [[ " $configs " == *" mariadb"* ]]; then
  userstat=$(mysql -h127.0.0.1 -uroot -N -e "SELECT @@GLOBAL.userstat")
  mysql -h127.0.0.1 -uroot -e "SET GLOBAL userstat=1"
fi
go build -o "$work/weave" ./cmd/weave
go build -o "$work/faultproxy" ./internal/faultproxy/cmd/faultproxy

cpu_of() { # CPU seconds (user + system) of the pids so far
  local t=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  python3 -c "print($t / $(getconf CLK_TCK))"
}
# Statements weave sent, counted by MariaDB's user statistics for the run's
# own user (other clients of the server do not count).
mysql_statements() {
  mysql -h127.0.0.1 -uroot -N -e "SELECT COALESCE(SUM(SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS), 0) FROM information_schema.USER_STATISTICS WHERE USER = '$1'"
}
# PostgreSQL transactions in the run's database: every statement outside
# BEGIN…COMMIT is one.
pg_xacts() { psql -h 127.0.0.1 -U postgres -tA -d "$1" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }

run() { # config round
  local name=$1 round=$2 kind=${1%%+*} port=3306 lat=0 dbname="weavesql_$(date +%s)_$RANDOM"
  [ "$kind" = postgres ] && port=5432
  case $name in *+1ms) lat=500us ;; esac
  local addr=127.0.0.1:$port proxy=""
  if [ "$lat" != 0 ]; then
    "$work/faultproxy" -target "127.0.0.1:$port" -latency "$lat" >"$work/proxy.addr" &
    proxy=$!
    for _ in $(seq 50); do [ -s "$work/proxy.addr" ] && break; sleep 0.1; done
    addr=$(head -1 "$work/proxy.addr")
  fi
  local url
  if [ "$kind" = mariadb ]; then
    mysql -h127.0.0.1 -uroot -e "CREATE DATABASE $dbname; CREATE USER '$dbname'@'%'; GRANT ALL ON $dbname.* TO '$dbname'@'%'"
    dbs+=("mysql:$dbname")
    url="mysql://$dbname@$addr/$dbname"
  else
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $dbname"; dbs+=("postgres:$dbname")
    url="postgres://postgres@$addr/$dbname?sslmode=disable"
  fi
  local wport=$((18000 + RANDOM % 1000)) data="$work/data-$name-$round"
  "$work/weave" db migrate --data-dir "$data" --database-url "$url" >/dev/null
  "$work/weave" serve --listen 127.0.0.1:$wport --data-dir "$data" --database-url "$url" \
    --log-level error --max-conns-per-client 0 >"$work/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$wport/__heartbeat__" >/dev/null && break; sleep 0.1; done
  local dbpid before load
  if [ "$kind" = mariadb ]; then dbpid=$(pgrep -x mariadbd | tr '\n' ' '); before=$(mysql_statements "$dbname")
  else dbpid=$(pgrep -x postgres | tr '\n' ' '); before=$(pg_xacts "$dbname"); fi
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  local dbcpu_before
  dbcpu_before=$(cpu_of $dbpid)
  "$work/weave" loadtest --mode direct --node-secret-file "$data/master-secret" --target "http://127.0.0.1:$wport" \
    --users "$users" --concurrency "$concurrency" --closed-loop --mix "$mix" --duration "$duration" \
    --server-pid "$pid" --seed "$round" --json >"$out/sql-$name-$round.json" 2>"$work/progress.txt" || echo "   (run reported errors)"
  local dbcpu_after after
  dbcpu_after=$(cpu_of $dbpid)
  if [ "$kind" = mariadb ]; then after=$(mysql_statements "$dbname"); else after=$(pg_xacts "$dbname"); fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ -n "$proxy" ] && { kill "$proxy"; wait "$proxy" 2>/dev/null || true; }
  python3 - "$out/sql-$name-$round.json" "$name" "$round" "$load" "$dbcpu_before" "$dbcpu_after" "$before" "$after" "$kind" >>"$work/rows.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
name, rnd, load = sys.argv[2], sys.argv[3], sys.argv[4]
se, t, cpu = r["sessions"], r["total"], r.get("server_cpu") or {}
n = max(1, se["completed"])
db = 1000 * (float(sys.argv[6]) - float(sys.argv[5])) / n
stm = (int(sys.argv[8]) - int(sys.argv[7])) / n
print("\t".join(str(x) for x in [name, rnd, f"{se['per_second']:.1f}", f"{se['p50_ms']:.1f}", f"{se['p99_ms']:.1f}",
      f"{t['p50_ms']:.2f}", f"{t['p99_ms']:.1f}", t["errors"], f"{cpu.get('cpu_seconds_per_1000_sessions', 0):.2f}",
      f"{db:.2f}", f"{stm:.1f}", sys.argv[9], load]))
PY
  tail -1 "$work/rows.tsv" | awk -F'\t' '{printf "%-14s round %s: %s sessions/s, session p50 %s ms p99 %s ms, request p50 %s ms p99 %s ms, errors %s, weave CPU %s s/1k sessions, db CPU %s s/1k, %s %s per session (load %s)\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, ($12=="mariadb"?"statements":"transactions"), $13}'
}

echo "bench-sql: $duration per run, $pairs rounds of: $configs; $users users, $concurrency concurrent, mix $mix; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$pairs"); do
  for c in $configs; do run "$c" "$round"; done
done

echo
echo "medians over $pairs rounds:"
python3 - "$work/rows.tsv" "$configs" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("| weave on | sessions/s | session p50 ms | session p99 ms | request p50 ms | request p99 ms | errors | weave CPU s / 1,000 sessions | DB CPU s / 1,000 sessions | statements (MariaDB) or transactions (PostgreSQL) per session | load average at start |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in sys.argv[2].split():
    rs = [r for r in rows if r[0] == c]
    if not rs:
        continue
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    loads = ", ".join(r[12].split()[0] for r in rs)
    print(f"| {c} | {med(2):.1f} | {med(3):.1f} | {med(4):.1f} | {med(5):.2f} | {med(6):.1f} | {sum(int(r[7]) for r in rs)} | {med(8):.2f} | {med(9):.2f} | {med(10):.1f} | {loads} |")
PY
