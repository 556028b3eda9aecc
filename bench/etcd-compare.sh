#!/usr/bin/env bash
# Cloister vs etcd on this machine, in one run (BENCHMARKS.md, "Cloister vs etcd").
#
#   3 × `cloister node --simulated` (one group)      3 × etcd (one cluster, data on tmpfs)
#            ▲                                                 ▲
#            └──────── cloister bench (same workers, same samples) ────────┘
#   64 clients: backups vs puts, spread over all three members, then leader only
#   1 client:   backups vs puts, against each system's leader
#   FILL_BACKUPS > 0: store that many backups (one user each), then time a fresh
#   replica's `cloister admin join` (loads the state through ReplicateState)
#
# Environment (defaults in brackets):
#   DURATION [10]      seconds per throughput run
#   SEQ_DURATION [DURATION]  seconds per one-client run
#   CLIENTS [64]       clients in the throughput runs
#   FILL_BACKUPS [0]   backups to store before the join measurement (0 skips it)
#   FILL_CLIENTS [64]  workers for the fill
#   ETCD_PORT_BASE [23790]  etcd client ports BASE..BASE+2, peer ports BASE+10..BASE+12
#   WORK [/dev/shm/cloister-etcd-compare]  scratch directory on tmpfs (wiped at start)
#   SKIP_BUILD [0]     1: use target/release/cloister as it is
#
# Everything listens on 127.0.0.1 only. Every process started here is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-10}
SEQ_DURATION=${SEQ_DURATION:-$DURATION}
CLIENTS=${CLIENTS:-64}
FILL_BACKUPS=${FILL_BACKUPS:-0}
FILL_CLIENTS=${FILL_CLIENTS:-64}
ETCD_PORT_BASE=${ETCD_PORT_BASE:-23790}
WORK=${WORK:-/dev/shm/cloister-etcd-compare}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLOISTER=$ROOT/target/release/cloister
PIDS=()

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local status=$? pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -eq 0 ]; then
    rm -rf "$WORK"
  else
    printf 'logs kept in %s\n' "$WORK" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- etcd --------------------------------------------------------------------------------
install_etcd() {
  if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
    return
  fi
  log "installing etcd-server and etcd-client (Debian packages)"
  as_root apt-get update -qq
  apt-cache policy etcd-server | sed -n '1,3p' >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >&2
  command -v etcd >/dev/null || die "etcd-server installed no etcd binary"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ETCD_ENDPOINTS=()
start_etcd() {
  local cluster="" i
  for i in 0 1 2; do
    local peer=$((ETCD_PORT_BASE + 10 + i)) client=$((ETCD_PORT_BASE + i))
    port_in_use "$peer" && die "port $peer is taken (set ETCD_PORT_BASE)"
    port_in_use "$client" && die "port $client is taken (set ETCD_PORT_BASE)"
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$peer"
  done
  for i in 0 1 2; do
    local peer=$((ETCD_PORT_BASE + 10 + i)) client=$((ETCD_PORT_BASE + i))
    etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
      --listen-client-urls "http://127.0.0.1:$client" \
      --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token cloister-etcd-compare \
      --logger zap --log-outputs stderr --log-level warn \
      2>"$WORK/etcd-$i.log" &
    PIDS+=($!)
    ETCD_ENDPOINTS+=("http://127.0.0.1:$client")
  done
}

etcd_ready() {
  # A put through every member's gateway: the same probe the bench makes.
  "$CLOISTER" bench --target etcd --etcd-endpoints "$(IFS=,; echo "${ETCD_ENDPOINTS[*]}")" \
    --clients 3 --duration 1 >/dev/null 2>&1
}

etcd_leader() {
  local endpoint status member leader
  for endpoint in "${ETCD_ENDPOINTS[@]}"; do
    status=$(ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint status -w json)
    member=$(grep -o '"member_id":[0-9]*' <<<"$status" | cut -d: -f2)
    leader=$(grep -o '"leader":[0-9]*' <<<"$status" | cut -d: -f2)
    if [ -n "$member" ] && [ "$member" = "$leader" ]; then
      echo "$endpoint"
      return
    fi
  done
  die "no etcd member says it is the leader"
}

# --- Cloister ------------------------------------------------------------------------------
# start_replica NAME: sets REPLICA_CLIENT, REPLICA_ADMIN, REPLICA_PEER.
start_replica() {
  local name=$1 out i
  mkdir -p "$WORK/$name"
  out=$WORK/$name.out
  "$CLOISTER" node --simulated --log-level warning --data-dir "$WORK/$name" \
    --auth-secret-file "$WORK/auth-secret" \
    --client-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --peer-listen 127.0.0.1:0 \
    >"$out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  for i in $(seq 100); do
    REPLICA_CLIENT=$(sed -n 's|^client listening on ||p' "$out")
    REPLICA_ADMIN=$(sed -n 's|^admin listening on ||p' "$out")
    REPLICA_PEER=$(sed -n 's|^peer listening on ||p' "$out")
    if [ -n "$REPLICA_CLIENT" ] && [ -n "$REPLICA_ADMIN" ] && [ -n "$REPLICA_PEER" ]; then
      return
    fi
    sleep 0.1
  done
  die "replica $name did not start (see $WORK/$name.log)"
}

admin() { "$CLOISTER" admin "$@"; }

retry() {
  local i
  for i in $(seq 60); do
    if "$@" >/dev/null 2>&1; then return; fi
    sleep 0.5
  done
  "$@"
}

CLOISTER_CLIENTS=()
CLOISTER_ADMINS=()
start_group() {
  local i
  for i in 0 1 2; do
    start_replica "r$i"
    CLOISTER_CLIENTS+=("$REPLICA_CLIENT")
    CLOISTER_ADMINS+=("$REPLICA_ADMIN")
    if [ "$i" -eq 0 ]; then FIRST_PEER=$REPLICA_PEER; fi
  done
  admin create-group --admin "${CLOISTER_ADMINS[0]}" >/dev/null
  for i in 1 2; do
    retry admin join --admin "${CLOISTER_ADMINS[$i]}" --peer "$FIRST_PEER" >/dev/null
    retry admin request-voting --admin "${CLOISTER_ADMINS[$i]}" >/dev/null
  done
}

cloister_leader() {
  local i
  for i in 0 1 2; do
    if admin status --json --admin "${CLOISTER_ADMINS[$i]}" | grep -q '"role":"leader"'; then
      echo "${CLOISTER_CLIENTS[$i]}"
      return
    fi
  done
  die "no Cloister replica says it is the leader"
}

# --- measuring -----------------------------------------------------------------------------
field() { grep -o "\"$1\":[0-9.e+-]*" <<<"$2" | head -1 | cut -d: -f2; }

bench_cloister() { # SERVERS CLIENTS DURATION
  "$CLOISTER" bench --json --allow-simulated --auth-secret-file "$WORK/auth-secret" \
    --op backup --servers "$1" --clients "$2" --duration "$3"
}

bench_etcd() { # ENDPOINTS CLIENTS DURATION
  "$CLOISTER" bench --json --target etcd --etcd-endpoints "$1" --clients "$2" --duration "$3"
}

describe() { # LABEL JSON
  printf '%-44s %9.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  p999 %7.3f ms  errors %s\n' "$1" \
    "$(field ops_per_sec "$2")" "$(field p50_ms "$2")" "$(field p99_ms "$2")" \
    "$(field p999_ms "$2")" "$(field errors "$2")"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { # VALUE OP TARGET
  awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
    ok = (op == ">=") ? (v >= t) : (v <= t); print (ok ? "met" : "NOT met") }'
}

time_join() { # prints seconds from `admin join` to the replica holding the group's state
  local admin_url=$1 peer=$2 start end
  start=$(date +%s.%N)
  # The admin command gives up after 10 s; the join itself goes on, so poll for it.
  admin join --admin "$admin_url" --peer "$peer" >/dev/null 2>&1 || true
  for _ in $(seq 6000); do
    if admin status --json --admin "$admin_url" 2>/dev/null | grep -q '"group_config":{'; then
      end=$(date +%s.%N)
      awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
      return
    fi
    sleep 0.05
  done
  die "the new replica did not finish joining within 300 s"
}

# --- the run -------------------------------------------------------------------------------
main() {
  local load_at_start
  load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
  install_etcd
  if [ "$SKIP_BUILD" != 1 ]; then
    log "building cloister (release)"
    (cd "$ROOT" && cargo build --release -p cloister-cli >&2)
  fi
  [ -x "$CLOISTER" ] || die "$CLOISTER is missing"
  rm -rf "$WORK" && mkdir -p "$WORK"
  # A private copy: the shared target directory may be rebuilt during the run.
  cp "$CLOISTER" "$WORK/cloister"
  CLOISTER=$WORK/cloister

  log "starting a 3-member etcd cluster and a 3-replica Cloister group on 127.0.0.1"
  start_etcd
  start_group
  retry etcd_ready || die "etcd did not become healthy (see $WORK/etcd-*.log)"
  local all_cloister all_etcd cloister_lead etcd_lead
  all_cloister=$(IFS=,; echo "${CLOISTER_CLIENTS[*]}")
  all_etcd=$(IFS=,; echo "${ETCD_ENDPOINTS[*]}")
  retry bench_cloister "$all_cloister" 3 1 >/dev/null || die "the Cloister group is not serving"
  cloister_lead=$(cloister_leader)
  etcd_lead=$(etcd_leader)

  log "measuring: ${CLIENTS} clients × ${DURATION} s, 1 client × ${SEQ_DURATION} s, each system"
  local c_all e_all c_lead e_lead c_one e_one
  c_all=$(bench_cloister "$all_cloister" "$CLIENTS" "$DURATION")
  e_all=$(bench_etcd "$all_etcd" "$CLIENTS" "$DURATION")
  c_lead=$(bench_cloister "$cloister_lead" "$CLIENTS" "$DURATION")
  e_lead=$(bench_etcd "$etcd_lead" "$CLIENTS" "$DURATION")
  c_one=$(bench_cloister "$cloister_lead" 1 "$SEQ_DURATION")
  e_one=$(bench_etcd "$etcd_lead" 1 "$SEQ_DURATION")

  local join_seconds="" backups="" same_hash=""
  if [ "$FILL_BACKUPS" -gt 0 ]; then
    log "storing $FILL_BACKUPS backups (one new user each) with $FILL_CLIENTS workers"
    local fill
    fill=$("$CLOISTER" bench --json --allow-simulated --auth-secret-file "$WORK/auth-secret" \
      --op fill --backups "$FILL_BACKUPS" --servers "$cloister_lead" --clients "$FILL_CLIENTS")
    describe "fill ($FILL_BACKUPS users)" "$fill" >&2
    log "starting a fourth replica and timing its join"
    start_replica r3
    join_seconds=$(time_join "$REPLICA_ADMIN" "$FIRST_PEER")
    backups=$(field backups "$(admin status --json --admin "$REPLICA_ADMIN")")
    local new_hash old_hash
    new_hash=$(admin hashes --admin "$REPLICA_ADMIN" | cut -d' ' -f3)
    old_hash=$(admin hashes --admin "${CLOISTER_ADMINS[0]}" | cut -d' ' -f3)
    if [ "$new_hash" = "$old_hash" ]; then same_hash=yes; else same_hash="NO ($new_hash vs $old_hash)"; fi
  fi

  local throughput_ratio lead_ratio p50_ratio p99_ratio
  throughput_ratio=$(ratio "$(field ops_per_sec "$c_all")" "$(field ops_per_sec "$e_all")")
  lead_ratio=$(ratio "$(field ops_per_sec "$c_lead")" "$(field ops_per_sec "$e_lead")")
  p50_ratio=$(ratio "$(field p50_ms "$c_one")" "$(field p50_ms "$e_one")")
  p99_ratio=$(ratio "$(field p99_ms "$c_one")" "$(field p99_ms "$e_one")")

  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)"
  echo "etcd: $(etcd --version | head -1 | sed 's/etcd Version: //'); cloister: $("$CLOISTER" --version)"
  echo "load average at start: $load_at_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  describe "cloister backup, $CLIENTS clients, 3 replicas" "$c_all"
  describe "etcd put,       $CLIENTS clients, 3 members" "$e_all"
  describe "cloister backup, $CLIENTS clients, leader" "$c_lead"
  describe "etcd put,       $CLIENTS clients, leader" "$e_lead"
  describe "cloister backup, 1 client, leader" "$c_one"
  describe "etcd put,       1 client, leader" "$e_one"
  echo "throughput ratio, $CLIENTS clients over 3 members: $throughput_ratio (target >= 1.5: $(verdict "$throughput_ratio" '>=' 1.5))"
  echo "throughput ratio, $CLIENTS clients on the leader: $lead_ratio"
  echo "one-client latency ratio cloister/etcd: p50 $p50_ratio, p99 $p99_ratio (target <= 1: p50 $(verdict "$p50_ratio" '<=' 1), p99 $(verdict "$p99_ratio" '<=' 1))"
  if [ -n "$join_seconds" ]; then
    echo "new replica join with $backups backups loaded: ${join_seconds} s (target < 10 s for 1,000,000: $(verdict "$join_seconds" '<=' 10)); database hash equal to the leader's: $same_hash"
  fi
}

main "$@"
