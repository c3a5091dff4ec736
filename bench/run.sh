#!/usr/bin/env bash
# Gatehouse benchmark: pgbench through Gatehouse beside direct PostgreSQL and
# PgBouncer (session and transaction pooling), in one run, reported as ratios.
# See bench/README.md. Usage: bash bench/run.sh   (or npm run bench)
#
# Env: BENCH_SECONDS (10)   seconds per measured run
#      BENCH_CLIENTS (4)    pgbench clients (-c)
#      BENCH_THREADS (2)    pgbench threads (-j)
#      BENCH_WARMUP  (3)    seconds of unmeasured warm-up before each run (0: none)
#      BENCH_SCALE   (10)   pgbench scale for `pgbench -i` (only when the database is (re)built)
#      BENCH_WORKLOADS      space-separated subset of: select select_connect topic tpcb
#      BENCH_TARGETS        space-separated subset of: direct pgb_session pgb_txn gatehouse
#      BENCH_PGHOST/BENCH_PGPORT/BENCH_PGSUPERUSER (127.0.0.1/5432/postgres): the PostgreSQL to set up
#      BENCH_RESULTS (bench/results/latest.md)   where the report is written
#
# What it touches on PostgreSQL: database gatehouse_bench and the login roles
# gatehouse_bench_reader and gatehouse_bench_writer (created if missing), nothing else.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CLIENTS="${BENCH_CLIENTS:-4}"
THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-3}"
SCALE="${BENCH_SCALE:-10}"
WORKLOADS="${BENCH_WORKLOADS:-select select_connect topic tpcb}"
TARGETS="${BENCH_TARGETS:-direct pgb_session pgb_txn gatehouse}"
PGH="${BENCH_PGHOST:-127.0.0.1}"
PGP="${BENCH_PGPORT:-5432}"
PGSU="${BENCH_PGSUPERUSER:-postgres}"
RESULTS="${BENCH_RESULTS:-$REPO/bench/results/latest.md}"
DB=gatehouse_bench
READER=gatehouse_bench_reader
WRITER=gatehouse_bench_writer
TOPICS=gatehouse_bench_topics
GH_PASSWORD=bench
(( THREADS > CLIENTS )) && THREADS="$CLIENTS"

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
auth_type = trust
auth_file = $WORK/pgbouncer/userlist.txt
pool_mode = session
max_client_conn = 1000
default_pool_size = $(( CLIENTS + 4 ))
ignore_startup_parameters = extra_float_digits
admin_users = $PGSU
INI
  printf '"%s" ""\n"%s" ""\n"%s" ""\n' "$READER" "$WRITER" "$PGSU" >"$WORK/pgbouncer/userlist.txt"
  PGB_ARGS=()
  if [[ "$(id -u)" == 0 ]]; then
    # PgBouncer refuses to run as root: run it as the postgres OS user.
    PGB_ARGS=(-u postgres)
    chmod 755 "$WORK" "$WORK/pgbouncer"
    chmod 644 "$WORK/pgbouncer/"*
  fi
  "$PGB_BIN" "${PGB_ARGS[@]}" "$WORK/pgbouncer/pgbouncer.ini" >"$WORK/pgbouncer.log" 2>&1 &
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
VERIFIER="$(cd "$REPO" && node --import tsx src/cli.ts verifier "$GH_PASSWORD")"
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
cat >"$RULES/bench/connections/pgbench.yaml" <<YAML
kind: postgres
host: $PGH
port: $PGP
database: $DB
user: $READER
topics_user: $TOPICS
allow_writes: false
permissions:
  default: no_access
  groups: { bench: querier }
  users: { topics@bench.example: query_topics }
YAML
cat >"$RULES/bench/connections/pgbench_rw.yaml" <<YAML
kind: postgres
host: $PGH
port: $PGP
database: $DB
user: $WRITER
allow_writes: true
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
REWRITTEN="$(cd "$REPO" && node --import tsx src/cli.ts explain --rules "$RULES" --user topics@bench.example --connection pgbench "SELECT abalance FROM accounts WHERE aid = 1" 2>&1 || true)"
say "Gatehouse rewrites the topic query as:"
printf '%s\n' "$REWRITTEN" | sed 's/^/[bench]   /' >&2
# Gatehouse runs with its own working directory so its audit log (.gatehouse/audit.jsonl) stays in $WORK.
(cd "$WORK/gatehouse-cwd" && GATEHOUSE_ADMIN_PORT="$GH_ADMIN_PORT" exec node ${BENCH_NODE_FLAGS:-} --import "file://$REPO/node_modules/tsx/dist/loader.mjs" "$REPO/src/cli.ts" serve --rules "$RULES" --port "$GH_PORT") >"$WORK/gatehouse.log" 2>&1 &
GH_PID=$!
PIDS+=("$GH_PID")
if ! wait_port 127.0.0.1 "$GH_PORT" gatehouse "$GH_PID"; then
  tail -50 "$WORK/gatehouse.log" >&2
  die "Gatehouse did not start (log above)"
fi
say "Gatehouse on 127.0.0.1:$GH_PORT (admin $GH_ADMIN_PORT), rules in $RULES"

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
    gatehouse)
      case "$w" in
        tpcb)  echo "127.0.0.1 $GH_PORT pgbench_rw bench@bench.example" ;;
        topic) echo "127.0.0.1 $GH_PORT pgbench topics@bench.example" ;;
        *)     echo "127.0.0.1 $GH_PORT pgbench bench@bench.example" ;;
      esac ;;
  esac
}

workload_args() {
  local t="$1" w="$2"
  case "$w" in
    select)         echo "-S -M simple" ;;
    select_connect) echo "-S -M simple -C" ;;
    topic)          [[ "$t" == gatehouse ]] && echo "-M simple -s $PG_SCALE -f $WORK/topic_gatehouse.sql" || echo "-M simple -s $PG_SCALE -f $WORK/topic_direct.sql" ;;
    tpcb)           echo "-M simple" ;;  # built-in tpcb-like: BEGIN; UPDATE x3; SELECT; INSERT; END
  esac
}

declare -A TPS LAT ERR
ERR_COUNT=0
run_pgbench() { # target workload seconds logfile
  local host port db user
  read -r host port db user <<<"$(endpoint "$1" "$2")"
  # -n: no VACUUM by pgbench (the roles do not own the tables; done below as superuser).
  # shellcheck disable=SC2046
  PGPASSWORD="$GH_PASSWORD" PGSSLMODE=disable PGCONNECT_TIMEOUT=10 \
    pgbench -n $(workload_args "$1" "$2") -c "$CLIENTS" -j "$THREADS" -T "$3" \
    -h "$host" -p "$port" -U "$user" "$db" >"$4" 2>&1
}

enabled_target() {
  case "$1" in pgb_*) [[ "$PGB_OK" == 1 ]] ;; *) return 0 ;; esac
}

for w in $WORKLOADS; do
  if [[ "$w" == tpcb ]]; then
    # tpcb-like writes: keep each target's starting point the same.
    su_psql -d "$DB" -c 'TRUNCATE pgbench_history' >/dev/null
  fi
  su_psql -d "$DB" -c 'VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history' >/dev/null
  for t in $TARGETS; do
    enabled_target "$t" || continue
    log="$WORK/pgbench.$w.$t.log"
    if (( WARMUP > 0 )); then run_pgbench "$t" "$w" "$WARMUP" "$log.warmup" || true; fi
    say "$w via $t: $SECONDS_PER_RUN s, $CLIENTS clients"
    rc=0
    run_pgbench "$t" "$w" "$SECONDS_PER_RUN" "$log" || rc=$?
    tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log" | head -1)"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$log" | head -1)"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log" | head -1)"
    errs="$(grep -E 'ERROR|FATAL|aborted|error|could not' "$log" | sort | uniq -c | sort -rn | head -3 | sed 's/^ *//' || true)"
    if [[ $rc != 0 || -z "$tps" || -n "$errs" || ( -n "$failed" && "$failed" != 0 ) ]]; then
      ERR[$w.$t]="exit $rc; ${errs:-$(tail -3 "$log")}"
      ERR_COUNT=$((ERR_COUNT + 1))
      say "  FAILED: ${ERR[$w.$t]}"
    fi
    TPS[$w.$t]="${tps:-}"
    LAT[$w.$t]="${lat:-}"
    [[ -n "$tps" ]] && say "  tps $tps, latency $lat ms"
  done
done
SENT_SQL="$(grep -h '"topics":\["accounts"\]' "$WORK/gatehouse-cwd/.gatehouse/audit.jsonl" 2>/dev/null | tail -1 | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).sent_sql.join("; "))}catch{console.log("(none recorded)")}})' || true)"
kill -0 "$GH_PID" 2>/dev/null || { tail -30 "$WORK/gatehouse.log" >&2; loud "Gatehouse exited during the run (log above)"; }

# ---------------------------------------------------------------- report
ratio() { # a b -> a/b with 2 decimals, or n/a
  if [[ -n "$1" && -n "$2" ]] && awk "BEGIN{exit !($2 > 0)}"; then awk "BEGIN{printf \"%.2f\", $1/$2}"; else echo "n/a"; fi
}
cell() { # workload target
  if [[ -n "${TPS[$1.$2]:-}" ]]; then
    printf '%s tps, %s ms' "$(printf '%.0f' "${TPS[$1.$2]}")" "${LAT[$1.$2]:-?}"
  elif enabled_target "$2"; then printf 'FAILED'
  else printf 'not run'
  fi
  [[ -n "${ERR[$1.$2]:-}" && -n "${TPS[$1.$2]:-}" ]] && printf ' (errors)'
  return 0
}
declare -A LABEL=([direct]="direct PostgreSQL" [pgb_session]="PgBouncer session" [pgb_txn]="PgBouncer transaction" [gatehouse]="Gatehouse")
declare -A WLABEL=([select]="select-only (-S)" [select_connect]="select-only, new connection per transaction (-S -C)" [topic]="topic (accounts by aid)" [tpcb]="tpcb-like (writes)")

mkdir -p "$(dirname "$RESULTS")"
{
  echo "# Gatehouse benchmark results"
  echo
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/run.sh\` at commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')."
  echo
  echo "- Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
  echo "- $(psql --version), $(pgbench --version), Node $(node --version)$([[ "$PGB_OK" == 1 ]] && echo ", PgBouncer $("$PGB_BIN" --version | head -1 | awk '{print $2}')")"
  echo "- Everything (PostgreSQL, PgBouncer, Gatehouse, pgbench) on the same machine, sharing its cores."
  echo "- pgbench scale $PG_SCALE, $CLIENTS clients, $THREADS threads, $SECONDS_PER_RUN s per run after ${WARMUP} s warm-up, \`-M simple\` everywhere (Gatehouse speaks the simple query protocol only), \`-n\` (no vacuum by pgbench)."
  [[ -n "$PGB_NOTE" ]] && { echo; echo "**$PGB_NOTE**"; }
  echo
  echo "## TPS and mean latency"
  echo
  hdr="| workload |"; sep="|---|"
  for t in $TARGETS; do hdr+=" ${LABEL[$t]} |"; sep+="---|"; done
  echo "$hdr"; echo "$sep"
  for w in $WORKLOADS; do
    row="| ${WLABEL[$w]} |"
    for t in $TARGETS; do row+=" $(cell "$w" "$t") |"; done
    echo "$row"
  done
  echo
  echo "## Ratios (TPS of Gatehouse / TPS of the other; 1.00 = as fast)"
  echo
  echo "| workload | Gatehouse / direct | Gatehouse / PgBouncer session | Gatehouse / PgBouncer transaction |"
  echo "|---|---|---|---|"
  for w in $WORKLOADS; do
    echo "| ${WLABEL[$w]} | $(ratio "${TPS[$w.gatehouse]:-}" "${TPS[$w.direct]:-}") | $(ratio "${TPS[$w.gatehouse]:-}" "${TPS[$w.pgb_session]:-}") | $(ratio "${TPS[$w.gatehouse]:-}" "${TPS[$w.pgb_txn]:-}") |"
  done
  echo
  echo "## Notes"
  echo
  echo "- Topic workload: through Gatehouse, \`$TOPIC_SQL\` as topics@bench.example (query_topics, attribute bid: \"1\"), which Gatehouse rewrites to the governed subquery. Direct and via PgBouncer the equivalent SQL on the base table with the same filter runs instead, written as Gatehouse sends it, so PostgreSQL does the same work on every target:"
  echo '  ```sql'
  sed -n 2p "$WORK/topic_direct.sql" | sed 's/^/  /'
  echo '  ```'
  echo "  What Gatehouse sent to PostgreSQL for the last topic statement of the run (audit log, sent_sql):"
  echo '  ```sql'
  echo "  $SENT_SQL"
  echo '  ```'
  echo "  For comparison, \`gatehouse explain\` (offline, no warehouse) shows this rewrite, without the aid pushdown:"
  echo '  ```'
  printf '%s\n' "$REWRITTEN" | sed 's/^/  /'
  echo '  ```'
  echo "- Direct and PgBouncer connect as $READER ($WRITER for tpcb-like), the same least-privilege roles Gatehouse's connections pgbench and pgbench_rw use upstream."
  echo "- Gatehouse opens one upstream PostgreSQL connection per client session and authenticates every client with SCRAM-SHA-256 (4096 iterations); the \`-C\` row pays both per transaction. PgBouncer reuses its server connections (trust auth for clients)."
  if (( ERR_COUNT > 0 )); then
    echo
    echo "## Errors"
    echo
    for k in "${!ERR[@]}"; do
      echo "- ${k/./ via }: \`$(printf '%s' "${ERR[$k]}" | tr '\n' ' ' | sed 's/  */ /g')\`"
    done
  fi
} >"$RESULTS"

echo
cat "$RESULTS"
say "written to $RESULTS"
