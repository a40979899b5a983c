#!/usr/bin/env bash
# Which database statements does a session still make with --memcache?
# (issue 14 target 7.) Fixed work, so the counts do not depend on the
# machine's load: for each configuration (without, then with the cache) a
# fresh weave on a fresh MariaDB database behind the fault proxy (LATENCY
# each way), FILL molotov sessions, 200 warm-up sessions of MIX, then N
# sessions of MIX with MariaDB's general log on. Prints per session: the
# statements of this run's own MariaDB user (a throwaway one, so other
# clients of the server do not count) grouped by text, the round trips the
# proxy forwarded, and the CPU milliseconds of weave, MariaDB (that user's
# CPU_TIME in USER_STATISTICS), memcached, the proxy and the load
# generator. Targets only 127.0.0.1; needs root on MariaDB (it turns the
# general log and userstat on, and both back as they were).
#
#   scripts/cache-statements.sh          (MIX=firefox-reads N=600 FILL=500 CONCURRENCY=16 LATENCY=500us)
set -euo pipefail
cd "$(dirname "$0")/.."
mix=${MIX:-firefox-reads}
n=${N:-600}
fill=${FILL:-500}
concurrency=${CONCURRENCY:-16}
latency=${LATENCY:-500us}
work=$(mktemp -d)
pids=()
sql() { mysql -h127.0.0.1 -uroot -N -e "$1"; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$work/genlog" ] && sql "SET GLOBAL general_log=0; SET GLOBAL general_log_file='$(cat "$work/genlog")'" || true
  [ -f "$work/userstat" ] && sql "SET GLOBAL userstat=$(cat "$work/userstat")" || true
  while read -r name; do
    sql "DROP DATABASE IF EXISTS $name; DROP USER IF EXISTS '$name'@'%'; DROP USER IF EXISTS '$name'@'localhost'" || true
  done < <(cat "$work/databases" 2>/dev/null)
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$(sql 'SELECT @@general_log')" != 0 ]; then
  echo "MariaDB's general log is already on (someone else's?): not touching it" >&2
  exit 1
fi
go build -o "$work/weave" ./cmd/weave
go build -o "$work/faultproxy" ./internal/faultproxy/cmd/faultproxy
sql "SELECT @@userstat" >"$work/userstat"
sql "SET GLOBAL userstat=1"

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME [serve flags…]
measure() {
  local label=$1; shift
  local d="$work/$label" name="wstmt_$(date +%s)_$RANDOM"
  mkdir -p "$d"
  echo "$name" >>"$work/databases"
  sql "CREATE DATABASE $name; CREATE USER '$name'@'%'; CREATE USER '$name'@'localhost';
       GRANT ALL ON $name.* TO '$name'@'%'; GRANT ALL ON $name.* TO '$name'@'localhost'"
  "$work/faultproxy" -target 127.0.0.1:3306 -latency "$latency" >"$d/proxy.out" &
  local proxy=$!
  pids+=("$proxy")
  for _ in $(seq 50); do [ -s "$d/proxy.out" ] && break; sleep 0.1; done
  local paddr port mc=""
  paddr=$(head -1 "$d/proxy.out")
  local flags=("$@")
  if [ "$label" = memcache ]; then
    local mport
    mport=$(freeport)
    memcached -l 127.0.0.1 -p "$mport" -U 0 -m 256 -t 1 $([ "$(id -u)" = 0 ] && echo -u nobody) &
    mc=$!
    pids+=("$mc")
    flags+=(--memcache "127.0.0.1:$mport")
    for _ in $(seq 50); do (: >"/dev/tcp/127.0.0.1/$mport") 2>/dev/null && break; sleep 0.1; done
  fi
  port=$(freeport)
  "$work/weave" serve --listen "127.0.0.1:$port" --data-dir "$d/data" --database-url "mysql://$name@$paddr/$name" \
    --max-conns-per-client 0 --log-level error "${flags[@]}" >"$d/serve.log" 2>&1 &
  local server=$!
  pids+=("$server")
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/__heartbeat__" >/dev/null && break; sleep 0.1; done
  local lt=("$work/weave" loadtest --mode direct --target "http://127.0.0.1:$port" --node-secret-file "$d/data/master-secret"
    --users 50 --concurrency "$concurrency" --closed-loop --duration 0)
  "${lt[@]}" --mix molotov --sessions "$fill" --seed 1 >/dev/null 2>&1
  "${lt[@]}" --mix "$mix" --sessions 200 --seed 3 >/dev/null 2>&1
  # Connections already open belong to this user too.
  sql "SELECT ID FROM information_schema.PROCESSLIST WHERE USER='$name'" >"$d/threads"
  local log="/var/lib/mysql/$name.log"
  sql "SELECT @@general_log_file" >"$work/genlog"
  sql "SET GLOBAL general_log_file='$log'; SET GLOBAL general_log=1"
  local c0 p0 m0=0 r0
  kill -USR1 "$proxy"; sleep 0.2
  r0=$(grep -c '^requests' "$d/proxy.out" || true)
  c0=$(sql "SELECT CPU_TIME FROM information_schema.USER_STATISTICS WHERE USER='$name'")
  p0=$(cpu_ticks "$proxy"); [ -n "$mc" ] && m0=$(cpu_ticks "$mc")
  /usr/bin/time -f "%U %S" -o "$d/loadtest.time" "${lt[@]}" --mix "$mix" --sessions "$n" --seed 2 \
    --server-pid "$server" --json >"$d/run.json" 2>/dev/null || echo "   (the run reported errors)"
  local c1 p1 m1=0
  c1=$(sql "SELECT CPU_TIME FROM information_schema.USER_STATISTICS WHERE USER='$name'")
  p1=$(cpu_ticks "$proxy"); [ -n "$mc" ] && m1=$(cpu_ticks "$mc")
  sql "SET GLOBAL general_log=0; SET GLOBAL general_log_file='$(cat "$work/genlog")'"
  rm -f "$work/genlog"
  mv "$log" "$d/general.log"
  kill -USR1 "$proxy"
  for _ in $(seq 50); do [ "$(grep -c '^requests' "$d/proxy.out" || true)" -gt "$r0" ] && break; sleep 0.1; done
  python3 - "$d" "$name" "$label" "$c0" "$c1" "$p0" "$p1" "$m0" "$m1" "$(getconf CLK_TCK)" <<'PY'
import collections, json, re, sys
d, user, label = sys.argv[1:4]
c0, c1 = float(sys.argv[4] or 0), float(sys.argv[5] or 0)
p0, p1, m0, m1, tck = (int(x) for x in sys.argv[6:11])
r = json.load(open(f"{d}/run.json"))
n = max(1, r["sessions"]["completed"])
rts = [int(l.split()[1]) for l in open(f"{d}/proxy.out") if l.startswith("requests")]
u, s = map(float, open(f"{d}/loadtest.time").read().split()[-2:])
cpu = {"weave": r["server_cpu"]["cpu_seconds_per_1000_sessions"], "MariaDB": (c1 - c0) / n * 1000,
       "memcached": (m1 - m0) / tck / n * 1000, "proxy": (p1 - p0) / tck / n * 1000, "loadtest": (u + s) / n * 1000}
mine = set(int(x) for x in open(f"{d}/threads").read().split())
entries = []
line = re.compile(r"^(?:\d{6}\s+\d+:\d+:\d+)?\s+(\d+) ([A-Z][a-z]+(?: [a-z]+)?)\t(.*)$")
for l in open(f"{d}/general.log", errors="replace"):
    m = line.match(l.rstrip("\n"))
    if m:
        entries.append([int(m.group(1)), m.group(2), m.group(3)])
    elif entries:
        entries[-1][2] += " " + l.strip()
mine |= {t for t, cmd, text in entries if cmd == "Connect" and text.startswith(user + "@")}
count = collections.Counter()
for t, cmd, text in entries:
    if t in mine and cmd in ("Query", "Execute"):
        text = re.sub(r"'(?:[^'\\]|\\.)*'", "?", text)
        text = re.sub(r"\b\d+\b", "N", re.sub(r"\s+", " ", text))
        count[text[:110]] += 1
total = sum(count.values())
print(f"== {label}: {r['mix']}, {n} sessions, {r['bytes_received'] / n / 1024:.1f} KiB received per session, load average {open('/proc/loadavg').read().split()[0]}")
print(f"   statements per session {total / n:.3f}; round trips through the proxy per session {(rts[-1] - rts[-2]) / n:.3f}")
print("   CPU ms per session: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) + f"; total {sum(cpu.values()):.2f}")
for text, c in count.most_common():
    print(f"   {c / n:6.3f}  {text}")
PY
  kill "$server" "$proxy" $mc 2>/dev/null || true
}

echo "MariaDB behind the fault proxy ($latency each way), $fill molotov sessions of fill, then $n sessions of $mix, concurrency $concurrency"
measure nocache
measure memcache
