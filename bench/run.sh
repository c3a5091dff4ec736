#!/usr/bin/env bash
# Gatehouse benchmark: pgbench through Gatehouse beside direct PostgreSQL and
# PgBouncer (session and transaction pooling), in one run, reported as ratios
# (issue 17, "As fast as PgBouncer"). See bench/README.md for each workload and knob.
# Usage: bash bench/run.sh   (or npm run bench)
#
# Env: BENCH_SECONDS (10)   seconds per measured run
#      BENCH_WARMUP  (3)    seconds of unmeasured warm-up before each run (0: none)
#      BENCH_THREADS (2)    pgbench threads (-j), at most the clients
#      BENCH_SCALE   (10)   pgbench scale for `pgbench -i` (only when the database is (re)built)
#      BENCH_WORKLOADS      space-separated subset of:
#                           select topic select_connect tpcb stream bad_client many_clients
#      BENCH_TARGETS        space-separated subset of: direct pgb_session pgb_txn node_floor gatehouse
#                           (node_floor: bench/node-floor.mjs, Node relaying bytes; select workload only)
#      BENCH_MODES ("simple extended prepared")   pgbench -M modes of the select workload
#      BENCH_CLIENT_COUNTS ("1 16")               client counts of the select workload
#      BENCH_TOPIC_CLIENTS (16)  BENCH_CONNECT_CLIENTS (4)  BENCH_CLIENTS (4, tpcb-like)
#      BENCH_STREAM_ROWS ("1000000 10000000")     rows of each streaming read
#      BENCH_BAD_CLIENTS (16) BENCH_BAD_HOLD (50) BENCH_BAD_MIDAUTH (20) BENCH_BAD_NOREAD (1)
#      BENCH_MANY_CLIENTS (150)  BENCH_PGB_POOL (20)   PgBouncer's default_pool_size
#      BENCH_NODE_FLAGS     extra flags for Gatehouse's node process (e.g. --cpu-prof --cpu-prof-dir=DIR)
#      BENCH_PGHOST/BENCH_PGPORT/BENCH_PGSUPERUSER (127.0.0.1/5432/postgres): the PostgreSQL to set up
#      BENCH_RESULTS (bench/results/latest.md)   where the report is written
#      BENCH_KEEP_WORK=1    keep the temporary work directory (logs, rules, audit, pgbench logs)
#      BENCH_BUILD=0        use dist/ as it is (default: npm run build first)
#
# What it touches on PostgreSQL: database gatehouse_bench and the login roles
# gatehouse_bench_reader, gatehouse_bench_writer and gatehouse_bench_topics (created if missing), nothing else.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CLIENTS="${BENCH_CLIENTS:-4}"
THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-3}"
SCALE="${BENCH_SCALE:-10}"
WORKLOADS="${BENCH_WORKLOADS:-select topic select_connect tpcb stream bad_client many_clients}"
TARGETS="${BENCH_TARGETS:-direct pgb_session pgb_txn node_floor gatehouse}"
MODES="${BENCH_MODES:-simple extended prepared}"
CLIENT_COUNTS="${BENCH_CLIENT_COUNTS:-1 16}"
TOPIC_CLIENTS="${BENCH_TOPIC_CLIENTS:-16}"
CONNECT_CLIENTS="${BENCH_CONNECT_CLIENTS:-4}"
STREAM_ROWS="${BENCH_STREAM_ROWS:-1000000 10000000}"
BAD_CLIENTS="${BENCH_BAD_CLIENTS:-16}"
BAD_HOLD="${BENCH_BAD_HOLD:-50}"
BAD_MIDAUTH="${BENCH_BAD_MIDAUTH:-20}"
BAD_NOREAD="${BENCH_BAD_NOREAD:-1}"
MANY_CLIENTS="${BENCH_MANY_CLIENTS:-150}"
PGB_POOL="${BENCH_PGB_POOL:-20}"
# Idle upstream connections of both proxies close after this many seconds, so the pools of one
# workload do not hold the server's connection slots (max_connections) through the next ones.
IDLE_SECONDS=10
NODE_FLAGS="${BENCH_NODE_FLAGS:-}"
PGH="${BENCH_PGHOST:-127.0.0.1}"
PGP="${BENCH_PGPORT:-5432}"
PGSU="${BENCH_PGSUPERUSER:-postgres}"
RESULTS="${BENCH_RESULTS:-$REPO/bench/results/latest.md}"
DB=gatehouse_bench
READER=gatehouse_bench_reader
WRITER=gatehouse_bench_writer
TOPICS=gatehouse_bench_topics
GH_PASSWORD=bench
LOAD_BEFORE="$(uptime)"

say() { printf '[bench] %s\n' "$*" >&2; }
loud() {
  printf '\n[bench] !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '[bench] !!! %s\n' "$@" >&2
  printf '[bench] !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}
die() { loud "$@"; exit 1; }

for tool in psql pgbench node; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH"
done
[[ -x "$REPO/node_modules/.bin/tsx" ]] || die "node_modules missing: run npm ci in $REPO first"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [[ "${BENCH_KEEP_WORK:-0}" == 1 ]]; then say "kept $WORK (logs, rules, audit)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

su_psql() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGH" -p "$PGP" -U "$PGSU" "$@"; }

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

wait_port() { # host port name pid
  local i
  for i in $(seq 300); do
    if ! kill -0 "$4" 2>/dev/null; then return 1; fi
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- PostgreSQL
say "PostgreSQL at $PGH:$PGP: database $DB, roles $READER and $WRITER"
su_psql -d postgres -Atc 'select 1' >/dev/null || die "cannot connect to PostgreSQL at $PGH:$PGP as $PGSU"
if [[ "$(su_psql -d postgres -Atc "select count(*) from pg_database where datname = '$DB'")" == 0 ]]; then
  su_psql -d postgres -c "CREATE DATABASE $DB"
fi
have_scale=0
if [[ "$(su_psql -d "$DB" -Atc "select to_regclass('public.pgbench_branches') is not null and to_regclass('public.pgbench_accounts') is not null")" == t ]]; then
  have_scale="$(su_psql -d "$DB" -Atc 'select count(*) from pgbench_branches')"
fi
if [[ "$have_scale" != "$SCALE" ]]; then
  say "initializing pgbench tables at scale $SCALE (found $have_scale)"
  pgbench -i -q -s "$SCALE" -h "$PGH" -p "$PGP" -U "$PGSU" "$DB" >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; die "pgbench -i failed"; }
fi
su_psql -d "$DB" <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$READER') THEN
    CREATE ROLE $READER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$WRITER') THEN
    CREATE ROLE $WRITER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$TOPICS') THEN
    CREATE ROLE $TOPICS LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION;
  END IF;
END
\$\$;
-- The topics account (query_topics sessions): SELECT on the topic's fields, nothing else, no TEMP.
REVOKE TEMP ON DATABASE $DB FROM PUBLIC;
GRANT CONNECT ON DATABASE $DB TO $TOPICS;
GRANT USAGE ON SCHEMA public TO $TOPICS;
GRANT SELECT (aid, bid, abalance) ON pgbench_accounts TO $TOPICS;
GRANT CONNECT ON DATABASE $DB TO $READER, $WRITER;
GRANT USAGE ON SCHEMA public TO $READER, $WRITER;
GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO $READER;
GRANT SELECT, INSERT, UPDATE ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO $WRITER;
SQL
PG_SCALE="$(su_psql -d "$DB" -Atc 'select count(*) from pgbench_branches')"
# The ids the topic workload draws from: 1 .. 100000 * scale (pgbench's accounts per branch).

# ---------------------------------------------------------------- PgBouncer
# A SCRAM-SHA-256 verifier of the bench password (the same format PostgreSQL stores), by Gatehouse's CLI.
scram_verifier() { (cd "$REPO" && node "$REPO/bin/gatehouse.js" verifier "$GH_PASSWORD"); }
PGB_OK=0
PGB_NOTE=""
if ! command -v pgbouncer >/dev/null; then
  say "PgBouncer not installed: installing Debian's package"
  if [[ "$(id -u)" == 0 ]]; then
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer; } >"$WORK/apt.log" 2>&1 || true
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    { sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer; } >"$WORK/apt.log" 2>&1 || true
  fi
  # Debian's package enables a system pgbouncer service on 6432; it is not ours, leave it.
fi
PGB_BIN="$(command -v pgbouncer || true)"
[[ -x /usr/sbin/pgbouncer && -z "$PGB_BIN" ]] && PGB_BIN=/usr/sbin/pgbouncer
if [[ -z "$PGB_BIN" ]]; then
  PGB_NOTE="PgBouncer could not be installed (needs root or passwordless sudo: apt-get install -y pgbouncer): reporting Gatehouse vs direct PostgreSQL only"
  loud "$PGB_NOTE"
else
  PGB_PORT="$(free_port)"
  mkdir -p "$WORK/pgbouncer"
  cat >"$WORK/pgbouncer/pgbouncer.ini" <<INI
[databases]
bench_session = host=$PGH port=$PGP dbname=$DB pool_mode=session
bench_txn = host=$PGH port=$PGP dbname=$DB pool_mode=transaction

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $WORK/pgbouncer/userlist.txt
pool_mode = session
max_client_conn = 1000
default_pool_size = $PGB_POOL
server_idle_timeout = $IDLE_SECONDS
ignore_startup_parameters = extra_float_digits
admin_users = $PGSU
INI
  # Clients sign in to PgBouncer with SCRAM-SHA-256 against a verifier, as they do to Gatehouse
  # (same password, same 4096 iterations), so -C compares like with like. PgBouncer itself signs in
  # to PostgreSQL however the server asks (trust here).
  PGB_VERIFIER="$(scram_verifier)"
  printf '"%s" "%s"\n' "$READER" "$PGB_VERIFIER" "$WRITER" "$PGB_VERIFIER" "$PGSU" "$PGB_VERIFIER" >"$WORK/pgbouncer/userlist.txt"
  PGB_ARGS=()
  if [[ "$(id -u)" == 0 ]]; then
    # PgBouncer refuses to run as root: run it as the postgres OS user.
    PGB_ARGS=(-u postgres)
    chmod 755 "$WORK" "$WORK/pgbouncer"
    chmod 644 "$WORK/pgbouncer/"*
  fi
  "$PGB_BIN" "${PGB_ARGS[@]}" "$WORK/pgbouncer/pgbouncer.ini" >"$WORK/pgbouncer.log" 2>&1 &
  PGB_PID=$!
  PIDS+=($!)
  if wait_port 127.0.0.1 "$PGB_PORT" pgbouncer "$!"; then
    PGB_OK=1
    say "PgBouncer $("$PGB_BIN" --version | head -1 | awk '{print $2}') on 127.0.0.1:$PGB_PORT"
  else
    cat "$WORK/pgbouncer.log" >&2
    PGB_NOTE="PgBouncer did not start (log above): reporting Gatehouse vs direct PostgreSQL only"
    loud "$PGB_NOTE"
  fi
fi

# ---------------------------------------------------------------- Gatehouse
RULES="$WORK/rules"
mkdir -p "$RULES/bench/connections" "$RULES/bench/topics" "$WORK/gatehouse-cwd"
VERIFIER="$(scram_verifier)"
GH_PORT="$(free_port)"
GH_ADMIN_PORT="$(free_port)"
cat >"$RULES/gatehouse.yaml" <<YAML
server:
  host: 127.0.0.1
  port: $GH_PORT
  admin_port: $GH_ADMIN_PORT
YAML
cat >"$RULES/bench/org.yaml" <<YAML
name: bench
groups: [bench]
# pgbench signs every client in as one person: the per-user and per-org session limits
# (20 and 200 by default) are raised so 150 clients can connect.
limits:
  max_sessions: 1000
  max_sessions_per_user: 1000
users:
  - email: bench@bench.example
    role: member
    groups: [bench]
    attributes: { bid: "1" }
    scram: $VERIFIER
  - email: topics@bench.example
    role: member
    attributes: { bid: "1" }
    scram: $VERIFIER
YAML
# The bad_client workload's misbehaving client: a person of another org on the same database,
# under the default limits (20 sessions per user), as a hostile user of a real deployment is.
mkdir -p "$RULES/badorg/connections"
cat >"$RULES/badorg/org.yaml" <<YAML
name: badorg
groups: [bench]
users:
  - email: bad@bench.example
    role: member
    groups: [bench]
    attributes: { bid: "1" }
    scram: $VERIFIER
YAML
cat >"$RULES/badorg/connections/pgbench.yaml" <<YAML
kind: postgres
host: $PGH
port: $PGP
database: $DB
user: $READER
allow_writes: false
pool_idle_timeout: ${IDLE_SECONDS}s
permissions:
  default: no_access
  groups: { bench: querier }
YAML
cat >"$RULES/bench/connections/pgbench.yaml" <<YAML
kind: postgres
host: $PGH
port: $PGP
database: $DB
user: $READER
topics_user: $TOPICS
allow_writes: false
pool_idle_timeout: ${IDLE_SECONDS}s
permissions:
  default: no_access
  groups: { bench: querier }
  users: { topics@bench.example: query_topics }
YAML
# The same, with a transaction pool of 20 upstream connections: the many_clients workload.
cat >"$RULES/bench/connections/pgbench_txn.yaml" <<YAML
kind: postgres
host: $PGH
port: $PGP
database: $DB
user: $READER
allow_writes: false
pool_idle_timeout: ${IDLE_SECONDS}s
pooling: transaction
pool_size: 20
permissions:
  default: no_access
  groups: { bench: querier }
YAML
cat >"$RULES/bench/connections/pgbench_rw.yaml" <<YAML
kind: postgres
host: $PGH
port: $PGP
database: $DB
user: $WRITER
allow_writes: true
pool_idle_timeout: ${IDLE_SECONDS}s
permissions:
  default: no_access
  groups: { bench: querier }
YAML
cat >"$RULES/bench/topics/accounts.yaml" <<YAML
connection: pgbench
base: public.pgbench_accounts
fields: [aid, bid, abalance]
access_filters:
  - field: bid
    attribute: bid
YAML
TOPIC_SQL='SELECT abalance FROM accounts WHERE aid = :aid;'
REWRITTEN="$(cd "$REPO" && node "$REPO/bin/gatehouse.js" explain --rules "$RULES" --user topics@bench.example --connection pgbench "SELECT abalance FROM accounts WHERE aid = 1" 2>&1 || true)"
say "Gatehouse rewrites the topic query as:"
printf '%s\n' "$REWRITTEN" | sed 's/^/[bench]   /' >&2
# Gatehouse runs with its own working directory so its audit log (.gatehouse/audit.jsonl) stays in $WORK.
# Gatehouse runs compiled, as in production: the script builds dist/ first (npm run build, about
# 20 s), so a stale or missing build is never what gets measured. If the build fails it falls back
# to bin/gatehouse.js, which compiles src/ through tsx at start-up. The report says which. The node
# process is Gatehouse itself (exec), so $GH_PID is the pid whose /proc/<pid>/stat and status the runs read.
if [[ "${BENCH_BUILD:-1}" == 1 ]]; then
  say "building dist/ (npm run build)"
  (cd "$REPO" && npm run build >"$WORK/build.log" 2>&1) || { loud "npm run build failed (see $WORK/build.log): running through tsx"; rm -rf "$REPO/dist"; }
fi
GH_ENTRY=""
for f in "$REPO/dist/cli.js" "$REPO/dist/src/cli.js"; do [[ -f "$f" ]] && { GH_ENTRY="$f"; break; }; done
if [[ -n "$GH_ENTRY" ]]; then GH_HOW="compiled build: node ${GH_ENTRY#"$REPO/"}"; else GH_ENTRY="$REPO/bin/gatehouse.js"; GH_HOW="bin/gatehouse.js (src/ compiled by tsx at start-up; no dist/ build found)"; fi
[[ -n "$NODE_FLAGS" ]] && GH_HOW+=", node flags \`$NODE_FLAGS\`"
# shellcheck disable=SC2086 # BENCH_NODE_FLAGS is a list of flags
(cd "$WORK/gatehouse-cwd" && GATEHOUSE_ADMIN_PORT="$GH_ADMIN_PORT" exec node $NODE_FLAGS "$GH_ENTRY" serve --rules "$RULES" --port "$GH_PORT") >"$WORK/gatehouse.log" 2>&1 &
GH_PID=$!
PIDS+=("$GH_PID")
if ! wait_port 127.0.0.1 "$GH_PORT" gatehouse "$GH_PID"; then
  tail -50 "$WORK/gatehouse.log" >&2
  die "Gatehouse did not start (log above)"
fi
say "Gatehouse on 127.0.0.1:$GH_PORT (admin $GH_ADMIN_PORT, pid $GH_PID, $GH_HOW), rules in $RULES"

# The Node floor (bench/node-floor.mjs): bytes relayed between pgbench and PostgreSQL by Node's net
# module with nothing read, decided or audited. What any Node proxy pays per statement for its
# sockets, so the report can say how much of Gatehouse's cost is Node's I/O and how much is Gatehouse.
FLOOR_PORT="$(free_port)"
node "$REPO/bench/node-floor.mjs" "$FLOOR_PORT" "$PGH" "$PGP" >"$WORK/node-floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
wait_port 127.0.0.1 "$FLOOR_PORT" node-floor "$FLOOR_PID" || die "the Node floor relay did not start"


# ---------------------------------------------------------------- workloads
# Topic workload. Through Gatehouse the statement names the topic and is rewritten to the
# governed subquery; direct and via PgBouncer the equivalent SQL runs on the base table with
# the same access filter (bid = '1' for the user's attribute bid: "1"), written exactly as
# Gatehouse sends it to PostgreSQL (the audit log's sent_sql: OFFSET 0 barrier, the leakproof
# aid = ... pushed inside so the primary key is used), so each side does the same work on PostgreSQL. Ids are drawn from the whole table, so about 1 in $PG_SCALE hits a row.
cat >"$WORK/topic_gatehouse.sql" <<'SQL'
\set aid random(1, 100000 * :scale)
SELECT abalance FROM accounts WHERE aid = :aid;
SQL
cat >"$WORK/topic_direct.sql" <<'SQL'
\set aid random(1, 100000 * :scale)
SELECT abalance FROM ( SELECT aid, bid, abalance FROM public.pgbench_accounts WHERE bid = '1' AND aid = :aid OFFSET 0 ) AS accounts WHERE aid = :aid;
SQL

# target workload -> "host port dbname user"
endpoint() {
  local t="$1" w="$2"
  case "$t" in
    direct)      [[ "$w" == tpcb ]] && echo "$PGH $PGP $DB $WRITER" || echo "$PGH $PGP $DB $READER" ;;
    pgb_session) [[ "$w" == tpcb ]] && echo "127.0.0.1 $PGB_PORT bench_session $WRITER" || echo "127.0.0.1 $PGB_PORT bench_session $READER" ;;
    pgb_txn)     [[ "$w" == tpcb ]] && echo "127.0.0.1 $PGB_PORT bench_txn $WRITER" || echo "127.0.0.1 $PGB_PORT bench_txn $READER" ;;
    node_floor)  echo "127.0.0.1 $FLOOR_PORT $DB $READER" ;;
    gatehouse)
      case "$w" in
        tpcb)  echo "127.0.0.1 $GH_PORT pgbench_rw bench@bench.example" ;;
        topic) echo "127.0.0.1 $GH_PORT pgbench topics@bench.example" ;;
        bad)   echo "127.0.0.1 $GH_PORT pgbench bad@bench.example" ;;
        many)  echo "127.0.0.1 $GH_PORT pgbench_txn bench@bench.example" ;;
        *)     echo "127.0.0.1 $GH_PORT pgbench bench@bench.example" ;;
      esac ;;
  esac
}

enabled_target() { # target: asked for in BENCH_TARGETS and available
  [[ " $TARGETS " == *" $1 "* ]] || return 1
  case "$1" in pgb_*) [[ "$PGB_OK" == 1 ]] ;; *) return 0 ;; esac
}

# Gatehouse's own process, from /proc: CPU ticks (utime + stime, all threads) and memory (kB).
CLK_TCK="$(getconf CLK_TCK)"
gh_cpu_ticks() { cpu_ticks "$GH_PID"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo ""; }
# The process a target's statements pass through (its CPU per statement is reported): none for direct.
target_pid() { case "$1" in gatehouse) echo "$GH_PID" ;; node_floor) echo "$FLOOR_PID" ;; pgb_*) echo "${PGB_PID:-}" ;; esac; }
gh_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$GH_PID/status" 2>/dev/null || true; }
HWM_RESET=1
# Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0; needs to own the process),
# so each run's VmHWM is that run's peak. If it cannot, the report says the peaks are cumulative.
gh_reset_hwm() { echo 5 >"/proc/$GH_PID/clear_refs" 2>/dev/null || HWM_RESET=0; }
mb() { [[ -n "${1:-}" ]] && awk "BEGIN{printf \"%.0f\", $1/1024}" || echo "?"; }

# Nearest-rank p50 and p99 (ms) of the per-transaction latencies (3rd field, us) of pgbench -l logs;
# failed or skipped transactions (non-numeric) are left out.
percentiles() {
  cat "$@" 2>/dev/null | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n | awk '
    {a[NR] = $1}
    function rank(p,  i) { i = int(NR * p); if (i < NR * p) i++; if (i < 1) i = 1; return a[i] / 1000 }
    END { if (NR == 0) print "- -"; else printf "%.3f %.3f\n", rank(0.50), rank(0.99) }'
}

pgb() { # target workload clients seconds log [pgbench args...]
  local t="$1" w="$2" c="$3" secs="$4" log="$5" host port db user j="$THREADS"
  shift 5
  (( j > c )) && j="$c"
  read -r host port db user <<<"$(endpoint "$t" "$w")"
  # -n: no VACUUM by pgbench (the roles do not own the tables; done as superuser before each workload).
  PGPASSWORD="$GH_PASSWORD" PGSSLMODE=disable PGCONNECT_TIMEOUT=10 \
    pgbench -n "$@" -c "$c" -j "$j" -T "$secs" -h "$host" -p "$port" -U "$user" "$db" >"$log" 2>&1
}

declare -A TPS LAT P50 P99 XACTS CPU RSS ERR SKIP
ERR_COUNT=0
STMTS_PER_XACT=1
measure() { # key target workload clients [pgbench args...]: warm-up, then one measured run with -l
  local key="$1" t="$2" w="$3" c="$4"
  shift 4
  local f="${key//|/.}" rc=0 cpu0="" cpu1="" tps lat xacts failed errs
  local log="$WORK/pgbench.$f.log" prefix="$WORK/latency/$f"
  mkdir -p "$WORK/latency"
  if (( WARMUP > 0 )); then pgb "$t" "$w" "$c" "$WARMUP" "$log.warmup" "$@" || true; fi
  say "${key//|/ } ($*): $SECONDS_PER_RUN s, $c clients"
  local pid; pid="$(target_pid "$t")"
  [[ "$t" == gatehouse ]] && gh_reset_hwm
  [[ -n "$pid" ]] && cpu0="$(cpu_ticks "$pid")"
  pgb "$t" "$w" "$c" "$SECONDS_PER_RUN" "$log" -l --log-prefix="$prefix" "$@" || rc=$?
  [[ -n "$pid" ]] && cpu1="$(cpu_ticks "$pid")"
  [[ "$t" == gatehouse ]] && RSS[$key]="$(gh_kb VmHWM)"
  tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log" | head -1)"
  lat="$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$log" | head -1)"
  xacts="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log" | head -1)"
  failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log" | head -1)"
  errs="$(grep -E 'ERROR|FATAL|aborted|error|could not' "$log" | sed 's/client [0-9]*/client N/g' | sort | uniq -c | sort -rn | head -3 | sed 's/^ *//' || true)"
  if [[ $rc != 0 || -z "$tps" || -n "$errs" || ( -n "$failed" && "$failed" != 0 ) ]]; then
    ERR[$key]="exit $rc; ${errs:-$(tail -3 "$log")}"
    ERR_COUNT=$((ERR_COUNT + 1))
    say "  FAILED: ${ERR[$key]}"
  fi
  TPS[$key]="${tps:-}"
  LAT[$key]="${lat:-}"
  XACTS[$key]="${xacts:-}"
  read -r "P50[$key]" "P99[$key]" <<<"$(percentiles "$prefix".*)"
  if [[ -n "$cpu0" && -n "$cpu1" && -n "$xacts" && "$xacts" -gt 0 ]]; then
    CPU[$key]="$(awk "BEGIN{printf \"%.0f\", ($cpu1 - $cpu0) / $CLK_TCK * 1e6 / ($xacts * $STMTS_PER_XACT)}")"
  fi
  [[ "${BENCH_KEEP_WORK:-0}" == 1 ]] || rm -f "$prefix".*
  [[ -n "$tps" ]] && say "  tps $tps, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms${CPU[$key]:+, ${CPU[$key]} us CPU/statement in the proxy}${RSS[$key]:+, VmHWM $(mb "${RSS[$key]}") MB}"
  return 0
}

vacuum() { su_psql -d "$DB" -c 'VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history' >/dev/null; }

ROWS=()  # "workload|mode|clients", in the order run
declare -A STREAM MANY
BAD_SUMMARY=""
for w in $WORKLOADS; do
  STMTS_PER_XACT=1
  case "$w" in
    select)
      vacuum
      for m in $MODES; do
        for c in $CLIENT_COUNTS; do
          row="select|$m|$c"; ROWS+=("$row")
          for t in direct pgb_session pgb_txn node_floor gatehouse; do
            enabled_target "$t" || continue
            if [[ "$t" == pgb_txn && "$m" == prepared ]]; then
              SKIP[$row|$t]="not run: PgBouncer 1.18 does not keep prepared statements in transaction pooling"
              continue
            fi
            measure "$row|$t" "$t" select "$c" -S -M "$m"
          done
        done
      done ;;
    topic)
      vacuum
      row="topic|simple|$TOPIC_CLIENTS"; ROWS+=("$row")
      for t in direct pgb_session pgb_txn gatehouse; do
        enabled_target "$t" || continue
        if [[ "$t" == gatehouse ]]; then f="$WORK/topic_gatehouse.sql"; else f="$WORK/topic_direct.sql"; fi
        measure "$row|$t" "$t" topic "$TOPIC_CLIENTS" -M simple -s "$PG_SCALE" -f "$f"
      done ;;
    select_connect)
      vacuum
      row="select_connect|simple|$CONNECT_CLIENTS"; ROWS+=("$row")
      for t in direct pgb_session pgb_txn gatehouse; do
        enabled_target "$t" && measure "$row|$t" "$t" select "$CONNECT_CLIENTS" -S -M simple -C
      done ;;
    tpcb)
      STMTS_PER_XACT=7  # BEGIN; UPDATE x3; SELECT; INSERT; END
      row="tpcb|simple|$CLIENTS"; ROWS+=("$row")
      for t in direct pgb_session pgb_txn gatehouse; do
        enabled_target "$t" || continue
        # tpcb-like writes: keep each target's starting point the same.
        su_psql -d "$DB" -c 'TRUNCATE pgbench_history' >/dev/null
        vacuum
        measure "$row|$t" "$t" tpcb "$CLIENTS" -M simple
      done ;;
    stream)
      for n in $STREAM_ROWS; do
        for t in direct gatehouse; do
          enabled_target "$t" || continue
          key="$n|$t"; out="$WORK/stream.$n.$t"
          read -r host port db user <<<"$(endpoint "$t" select)"
          say "stream $n rows via $t"
          rss0=""; [[ "$t" == gatehouse ]] && { gh_reset_hwm; rss0="$(gh_kb VmRSS)"; }
          PGPASSWORD="$GH_PASSWORD" node "$REPO/bench/clients.mjs" stream --host "$host" --port "$port" --db "$db" --user "$user" --rows "$n" >"$out.json" 2>"$out.err" &
          cpid=$!; PIDS+=("$cpid")
          : >"$out.rss"
          # Gatehouse's resident set, sampled while the rows flow.
          while kill -0 "$cpid" 2>/dev/null; do
            [[ "$t" == gatehouse ]] && gh_kb VmRSS >>"$out.rss"
            sleep 0.2
          done
          rc=0; wait "$cpid" || rc=$?
          rows="$(sed -n 's/.*"rows":\([0-9]*\).*/\1/p' "$out.json")"
          bytes="$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' "$out.json")"
          secs="$(sed -n 's/.*"seconds":\([0-9.e-]*\).*/\1/p' "$out.json")"
          if [[ $rc != 0 || "$rows" != "$n" ]]; then
            ERR[stream|$key]="exit $rc; got ${rows:-no} rows of $n; $(tail -3 "$out.err" | tr '\n' ' ')"
            ERR_COUNT=$((ERR_COUNT + 1)); say "  FAILED: ${ERR[stream|$key]}"
          fi
          if [[ -n "$secs" ]]; then
            STREAM[$key.rps]="$(awk "BEGIN{printf \"%.0f\", $rows / $secs}")"
            STREAM[$key.mbs]="$(awk "BEGIN{printf \"%.1f\", $bytes / $secs / 1e6}")"
            STREAM[$key.secs]="$(awk "BEGIN{printf \"%.1f\", $secs}")"
          fi
          if [[ "$t" == gatehouse ]]; then
            STREAM[$key.rss0]="$rss0"
            STREAM[$key.rssmax]="$(sort -n "$out.rss" | tail -1)"
            STREAM[$key.rssend]="$(gh_kb VmRSS)"
            STREAM[$key.samples]="$(wc -l <"$out.rss")"
            STREAM[$key.hwm]="$(gh_kb VmHWM)"
          fi
          say "  ${STREAM[$key.rps]:-?} rows/s, ${STREAM[$key.mbs]:-?} MB/s${rss0:+, Gatehouse RSS $(mb "$rss0") MB before, max $(mb "${STREAM[$key.rssmax]}") MB, end $(mb "${STREAM[$key.rssend]}") MB}"
        done
      done ;;
    bad_client)
      enabled_target gatehouse || continue
      vacuum
      measure "bad_client|without|$BAD_CLIENTS|gatehouse" gatehouse select "$BAD_CLIENTS" -S -M simple
      read -r host port db user <<<"$(endpoint gatehouse bad)"
      say "bad client: $BAD_HOLD idle sessions, $BAD_MIDAUTH stuck mid-authentication, $BAD_NOREAD never reading a 10M-row SELECT, as $user"
      PGPASSWORD="$GH_PASSWORD" node "$REPO/bench/clients.mjs" bad --host "$host" --port "$port" --db "$db" --user "$user" \
        --hold "$BAD_HOLD" --midauth "$BAD_MIDAUTH" --noread "$BAD_NOREAD" --rows 10000000 \
        --seconds $(( WARMUP + SECONDS_PER_RUN + 300 )) >"$WORK/bad.json" 2>"$WORK/bad.err" &
      bpid=$!; PIDS+=("$bpid")
      for _ in $(seq 600); do grep -q ready "$WORK/bad.err" 2>/dev/null && break; kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
      BAD_RSS_READY="$(gh_kb VmRSS)"
      measure "bad_client|with|$BAD_CLIENTS|gatehouse" gatehouse select "$BAD_CLIENTS" -S -M simple
      kill -TERM "$bpid" 2>/dev/null || true
      wait "$bpid" || true
      BAD_SUMMARY="$(cat "$WORK/bad.json")"
      [[ -n "$BAD_SUMMARY" ]] || BAD_SUMMARY="(the bad client printed no summary: $(tail -3 "$WORK/bad.err" | tr '\n' ' '))"
      kill -0 "$GH_PID" 2>/dev/null || die "Gatehouse exited during the bad-client run: $(tail -20 "$WORK/gatehouse.log")" ;;
    many_clients)
      vacuum
      # The idle pools of the workloads before (both proxies') close first, as in service.
      say "many clients: waiting $((IDLE_SECONDS + 2)) s for idle upstream connections to close"
      sleep $((IDLE_SECONDS + 2))
      row="many_clients|simple|$MANY_CLIENTS"; ROWS+=("$row")
      for t in pgb_txn gatehouse; do
        enabled_target "$t" || continue
        read -r host port db user <<<"$(endpoint "$t" many)"
        say "many clients: $MANY_CLIENTS sessions at once via $t"
        MANY[$t]="$(PGPASSWORD="$GH_PASSWORD" node "$REPO/bench/clients.mjs" connect --host "$host" --port "$port" --db "$db" --user "$user" --conns "$MANY_CLIENTS" --seconds 2 2>&1 | tail -1)"
        say "  ${MANY[$t]}"
        measure "$row|$t" "$t" many "$MANY_CLIENTS" -S -M simple
      done ;;
    *) die "unknown workload '$w' (BENCH_WORKLOADS: select topic select_connect tpcb stream bad_client many_clients)" ;;
  esac
done
SENT_SQL="$(grep -h '"topics":\["accounts"\]' "$WORK/gatehouse-cwd/.gatehouse/audit.jsonl" 2>/dev/null | tail -1 | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).sent_sql.join("; "))}catch{console.log("(none recorded)")}})' || true)"
kill -0 "$GH_PID" 2>/dev/null || { tail -30 "$WORK/gatehouse.log" >&2; loud "Gatehouse exited during the run (log above)"; }
LOAD_AFTER="$(uptime)"

# ---------------------------------------------------------------- report
ratio() { # a b -> a/b with 2 decimals, or n/a
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($2 > 0)}"; then awk "BEGIN{printf \"%.2f\", $1/$2}"; else echo "n/a"; fi
}
int() { [[ -n "${1:-}" ]] && printf '%.0f' "$1" || printf '?'; }
cell() { # key target: "tps (p50 / p99 ms)"
  local k="$1|$2"
  if [[ -n "${TPS[$k]:-}" ]]; then
    printf '%s tps (%s / %s ms)' "$(int "${TPS[$k]}")" "${P50[$k]:-?}" "${P99[$k]:-?}"
    [[ -n "${ERR[$k]:-}" ]] && printf ' (errors)'
  elif [[ -n "${SKIP[$k]:-}" ]]; then printf '%s' "${SKIP[$k]}"
  elif [[ -n "${ERR[$k]:-}" ]]; then printf 'FAILED'
  else printf 'not run'
  fi
  return 0
}
reference() { # row -> the PgBouncer target Gatehouse is compared with
  case "$1" in *"|prepared|"*) echo pgb_session ;; *) echo pgb_txn ;; esac
}
declare -A LABEL=([direct]="direct PostgreSQL" [pgb_session]="PgBouncer session" [pgb_txn]="PgBouncer transaction" [gatehouse]="Gatehouse")
wlabel() { # row -> "workload | mode | clients"
  local w m c
  IFS='|' read -r w m c <<<"$1"
  case "$w" in
    select) echo "select-only (-S) | $m | $c" ;;
    topic) echo "topic (accounts by aid) | $m | $c" ;;
    select_connect) echo "select-only, new connection per transaction (-S -C) | $m | $c" ;;
    tpcb) echo "tpcb-like (writes) | $m | $c" ;;
    many_clients) echo "select-only, many clients | $m | $c" ;;
  esac
}
COMMAND="$( (env | grep '^BENCH_' || true) | sort | tr '\n' ' ')bash bench/run.sh"
PGB_VERSION=""; [[ "$PGB_OK" == 1 ]] && PGB_VERSION="$("$PGB_BIN" --version | head -1 | awk '{print $2}')"

mkdir -p "$(dirname "$RESULTS")"
{
  echo "# Gatehouse benchmark results"
  echo
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$([[ -n "$(git -C "$REPO" status --porcelain -- src bench ':!bench/results' 2>/dev/null)" ]] && echo ' (with uncommitted changes in src/ or bench/)')."
  echo
  echo "- Command: \`$COMMAND\`"
  echo "- Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
  echo "- $(psql --version), $(pgbench --version), Node $(node --version)${PGB_VERSION:+, PgBouncer $PGB_VERSION}; the server's max_connections is $(su_psql -d postgres -Atc 'show max_connections')."
  echo "- Gatehouse: $GH_HOW."
  echo "- Load before: \`${LOAD_BEFORE# }\`; after: \`${LOAD_AFTER# }\`."
  echo "- Everything (PostgreSQL, PgBouncer, Gatehouse, pgbench) on the same machine, sharing its cores."
  echo "- pgbench scale $PG_SCALE, up to $THREADS threads, $SECONDS_PER_RUN s per run after ${WARMUP} s warm-up, \`-n\` (no vacuum by pgbench), \`-l\` (per-transaction log, from which p50 and p99 are computed)."
  echo "- PgBouncer: \`auth_type = scram-sha-256\` against a userlist of SCRAM verifiers (4096 iterations, as Gatehouse's), \`default_pool_size = $PGB_POOL\`, \`server_idle_timeout = $IDLE_SECONDS\`; Gatehouse's connections \`pool_idle_timeout: ${IDLE_SECONDS}s\`, so idle upstream connections close alike on both."
  [[ -n "$PGB_NOTE" ]] && { echo; echo "**$PGB_NOTE**"; }
  echo
  echo "## Ratios"
  echo
  echo "TPS of Gatehouse / TPS of the reference (1.00 = as fast): PgBouncer session for \`-M prepared\`, PgBouncer transaction for the rest. p99 ratio: Gatehouse's p99 latency / the reference's (1.00 = as good, higher = worse)."
  echo
  echo "| workload | mode | clients | Gatehouse TPS | reference | reference TPS | **Gatehouse / reference** | Gatehouse / direct | p99 Gatehouse / reference |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for row in "${ROWS[@]}"; do
    [[ "$row" == many_clients* ]] && continue
    ref="$(reference "$row")"
    echo "| $(wlabel "$row") | $(int "${TPS[$row|gatehouse]:-}") | ${LABEL[$ref]} | $(int "${TPS[$row|$ref]:-}") | **$(ratio "${TPS[$row|gatehouse]:-}" "${TPS[$row|$ref]:-}")** | $(ratio "${TPS[$row|gatehouse]:-}" "${TPS[$row|direct]:-}") | $(ratio "${P99[$row|gatehouse]:-}" "${P99[$row|$ref]:-}") |"
  done
  echo
  echo "## TPS and latency (p50 / p99) per target"
  echo
  echo "| workload | mode | clients | direct PostgreSQL | PgBouncer session | PgBouncer transaction | Gatehouse |"
  echo "|---|---|---|---|---|---|---|"
  for row in "${ROWS[@]}"; do
    echo "| $(wlabel "$row") | $(cell "$row" direct) | $(cell "$row" pgb_session) | $(cell "$row" pgb_txn) | $(cell "$row" gatehouse) |"
  done
  echo
  echo "## Gatehouse's process per run"
  echo
  echo "CPU: utime + stime of Gatehouse's node process (all its threads, /proc/<pid>/stat) over the measured run, divided by the statements run (transactions x statements per transaction: 7 for tpcb-like, 1 otherwise). Peak RSS: VmHWM of /proc/<pid>/status after the run, $([[ "$HWM_RESET" == 1 ]] && echo 'reset (clear_refs) before each run, so it is that run'"'"'s peak' || echo 'which could NOT be reset here (clear_refs refused), so each peak is the peak since start')."
  echo
  echo "| workload | mode | clients | transactions | CPU per statement | peak RSS |"
  echo "|---|---|---|---|---|---|"
  for row in "${ROWS[@]}" "bad_client|without|$BAD_CLIENTS" "bad_client|with|$BAD_CLIENTS"; do
    k="$row|gatehouse"
    [[ -n "${XACTS[$k]:-}${ERR[$k]:-}" ]] || continue
    if [[ "$row" == bad_client* ]]; then label="select-only, $(cut -d'|' -f2 <<<"$row") the bad client | simple | $BAD_CLIENTS"; else label="$(wlabel "$row")"; fi
    echo "| $label | ${XACTS[$k]:-?} | ${CPU[$k]:-?} us | $(mb "${RSS[$k]:-}") MB |"
  done
  if [[ -n "${TPS[select|simple|1|node_floor]:-}${TPS[select|simple|16|node_floor]:-}${TPS[select|extended|1|node_floor]:-}" ]]; then
    echo
    echo "## The proxies' CPU per statement, and the Node floor"
    echo
    echo "CPU of the proxy's process (utime + stime over the run / statements) and its TPS. The Node floor is bench/node-floor.mjs: Node's net module relaying the bytes with nothing read, decided or audited, i.e. what any proxy written on Node pays for its sockets. Gatehouse's own work is its CPU minus the floor's."
    echo
    echo "| workload | mode | clients | PgBouncer session | PgBouncer transaction | Node floor | Gatehouse | Gatehouse - floor |"
    echo "|---|---|---|---|---|---|---|---|"
    for row in "${ROWS[@]}"; do
      [[ "$row" == select\|* && -n "${TPS[$row|node_floor]:-}" ]] || continue
      pc() { [[ -n "${CPU[$row|$1]:-}" ]] && echo "${CPU[$row|$1]} us ($(int "${TPS[$row|$1]:-}") tps)" || echo "-"; }
      diff=""; [[ -n "${CPU[$row|gatehouse]:-}" && -n "${CPU[$row|node_floor]:-}" ]] && diff="$(( CPU[$row|gatehouse] - CPU[$row|node_floor] )) us"
      echo "| $(wlabel "$row") | $(pc pgb_session) | $(pc pgb_txn) | $(pc node_floor) | $(pc gatehouse) | ${diff:--} |"
    done
  fi
  if [[ " $WORKLOADS " == *" stream "* ]]; then
    echo
    echo "## Streaming read"
    echo
    echo "\`SELECT g, repeat('x', 100) FROM generate_series(1, N) g\` read by \`bench/clients.mjs stream\` (node-postgres, rows discarded as they arrive; MB/s counts the protocol bytes received). Gatehouse's VmRSS sampled every 0.2 s during the read (samples in parentheses)."
    echo
    echo "| rows | target | seconds | rows/s | MB/s | Gatehouse / direct | Gatehouse RSS before | max during | at end | VmHWM |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for n in $STREAM_ROWS; do
      for t in direct gatehouse; do
        k="$n|$t"
        [[ -n "${STREAM[$k.secs]:-}${ERR[stream|$k]:-}" ]] || continue
        if [[ "$t" == gatehouse ]]; then
          echo "| $n | Gatehouse | ${STREAM[$k.secs]:-FAILED} | ${STREAM[$k.rps]:-} | ${STREAM[$k.mbs]:-} | $(ratio "${STREAM[$k.rps]:-}" "${STREAM[$n|direct.rps]:-}") | $(mb "${STREAM[$k.rss0]:-}") MB | $(mb "${STREAM[$k.rssmax]:-}") MB (${STREAM[$k.samples]:-0}) | $(mb "${STREAM[$k.rssend]:-}") MB | $(mb "${STREAM[$k.hwm]:-}") MB |"
        else
          echo "| $n | direct PostgreSQL | ${STREAM[$k.secs]:-FAILED} | ${STREAM[$k.rps]:-} | ${STREAM[$k.mbs]:-} | | | | | |"
        fi
      done
    done
  fi
  if [[ -n "$BAD_SUMMARY" ]]; then
    w="bad_client|without|$BAD_CLIENTS|gatehouse"; b="bad_client|with|$BAD_CLIENTS|gatehouse"
    echo
    echo "## Bad client"
    echo
    echo "The $BAD_CLIENTS-client select-only workload (\`-S -M simple\`, as bench@bench.example) through Gatehouse, alone and then beside a misbehaving client (\`bench/clients.mjs bad\`, as bad@bench.example of another org on the same database, same level) that holds $BAD_HOLD signed-in idle sessions, leaves $BAD_MIDAUTH connections stuck mid-authentication (StartupMessage sent, SCRAM never answered) and sends $BAD_NOREAD \`SELECT g, repeat('x', 100) FROM generate_series(1, 10000000) g\` whose results it never reads."
    echo
    echo "| good clients | TPS | p50 | p99 | Gatehouse peak RSS |"
    echo "|---|---|---|---|---|"
    for k in "$w" "$b"; do
      [[ "$k" == "$w" ]] && label=alone || label="beside the bad client"
      if [[ -n "${TPS[$k]:-}" ]]; then
        echo "| $label | $(int "${TPS[$k]}") | ${P50[$k]:-?} ms | ${P99[$k]:-?} ms | $(mb "${RSS[$k]:-}") MB |"
      else
        echo "| $label | FAILED: \`$(printf '%s' "${ERR[$k]:-}" | tr '\n' ' ' | sed 's/  */ /g' | cut -c1-300)\` | | | $(mb "${RSS[$k]:-}") MB |"
      fi
    done
    echo
    echo "Good clients with the bad one / alone: TPS $(ratio "${TPS[$b]:-}" "${TPS[$w]:-}"), p99 $(ratio "${P99[$b]:-}" "${P99[$w]:-}"). Gatehouse's RSS once the bad client was set up: $(mb "${BAD_RSS_READY:-}") MB."
    echo
    echo "What the bad client saw (errors by SQLSTATE and message, connections closed by the server before the end):"
    echo
    echo '```json'
    printf '%s\n' "$BAD_SUMMARY" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.stringify(JSON.parse(s),null,2))}catch{console.log(s)}})'
    echo '```'
  fi
  if [[ -n "${!MANY[*]}" ]]; then
    r="many_clients|simple|$MANY_CLIENTS"
    echo
    echo "## $MANY_CLIENTS clients"
    echo
    echo "$MANY_CLIENTS sessions at once (\`bench/clients.mjs connect\`: how many sign in and run \`SELECT 1\`), then pgbench \`-S -M simple -c $MANY_CLIENTS\`. PgBouncer transaction pooling with a pool of $PGB_POOL. Gatehouse serves them through its connection \`pgbench_txn\` (\`pooling: transaction\`, \`pool_size: 20\`); the table shows what each client got. While it runs, this workload can take every free connection slot of the server from its other users."
    echo
    echo "| target | signed in | errors of the others | pgbench |"
    echo "|---|---|---|---|"
    for t in pgb_txn gatehouse; do
      [[ -n "${MANY[$t]:-}" ]] || continue
      signed="$(sed -n 's/.*"signed_in":\([0-9]*\).*/\1/p' <<<"${MANY[$t]}")"
      errs="$(sed -n 's/.*"errors":\(.*\)}$/\1/p' <<<"${MANY[$t]}")"
      if [[ -n "${TPS[$r|$t]:-}" && -z "${ERR[$r|$t]:-}" ]]; then pgbres="all connected: $(cell "$r" "$t")"; else pgbres="failed: \`$(printf '%s' "${ERR[$r|$t]:-}" | tr '\n' ' ' | sed 's/  */ /g' | cut -c1-300)\`"; fi
      echo "| ${LABEL[$t]} | ${signed:-?} of $MANY_CLIENTS | \`${errs:-${MANY[$t]}}\` | $pgbres |"
    done
  fi
  echo
  echo "## Notes"
  echo
  [[ " $WORKLOADS " == *" topic "* ]] && {
  echo "- Topic workload: through Gatehouse, \`$TOPIC_SQL\` as topics@bench.example (query_topics, attribute bid: \"1\"), which Gatehouse rewrites to the governed subquery. Direct and via PgBouncer the equivalent SQL on the base table with the same filter runs instead, written as Gatehouse sends it, so PostgreSQL does the same work on every target:"
  echo '  ```sql'
  sed -n 2p "$WORK/topic_direct.sql" | sed 's/^/  /'
  echo '  ```'
  echo "  What Gatehouse sent to PostgreSQL for the last topic statement of the run (audit log, sent_sql):"
  echo '  ```sql'
  echo "  $SENT_SQL"
  echo '  ```'
  }
  echo "- Direct and PgBouncer connect as $READER ($WRITER for tpcb-like), the same least-privilege roles Gatehouse's connections pgbench and pgbench_rw use upstream."
  echo "- Both authenticate every client with SCRAM-SHA-256 (4096 iterations). Gatehouse's connections use session pooling (the default): a session's upstream connection is reset with DISCARD ALL and reused by the next session, so the \`-C\` row measures sign-in and reuse on both sides. The bad client is a person of another org (badorg) on the same database under the default limits: at most 20 sessions per user, so after its never-reading session, its idle sessions past 20 in all are refused with 53300 (its errors above), and each one it keeps holds an upstream connection (session pooling, as PgBouncer's session mode)."
  echo "- PgBouncer 1.18 in transaction mode does not support \`-M prepared\` (named prepared statements outlive the transaction; support came in 1.21), so prepared runs are compared with session mode."
  if (( ERR_COUNT > 0 )); then
    echo
    echo "## Errors"
    echo
    for k in "${!ERR[@]}"; do
      echo "- ${k//|/ }: \`$(printf '%s' "${ERR[$k]}" | tr '\n' ' ' | sed 's/  */ /g' | cut -c1-400)\`"
    done
  fi
} >"$RESULTS"

echo
cat "$RESULTS"
say "written to $RESULTS"
