#!/usr/bin/env bash
# Runs broker-bench against the three embedded-broker candidates, one after the other, each its own
# process on loopback (docs/benchmarks.md, "Embedded broker candidates"):
#   rmqtt     bench/rmqtt-embed rmqtt-embed   (rmqtt 0.24 + nguon auth/ACL hooks + in-memory retain)
#   rumqttd   bench/rmqtt-embed rumqttd-embed (rumqttd 0.20 with nguon-server's embedded config)
#   mosquitto a private /usr/sbin/mosquitto (the machine's 2.0.11) with the generated-style
#             password_file + acl_file and set_tcp_nodelay; never the machine's own instance.
#
# Usage: bench/rmqtt-embed/run.sh CLIENTS [rmqtt|rumqttd|mosquitto ...]
# Needs: CARGO_TARGET_DIR=/work/rmqtt-target cargo build --release   (in bench/rmqtt-embed)
#        cargo build --release -p nguon-tests --bin broker-bench     (BENCH below)
# Everything runs under `nice -n 19`. Output: $OUT/<broker>-<clients>.txt
set -euo pipefail
N=${1:-1000}
shift || true
BROKERS=${*:-rmqtt rumqttd mosquitto}
BENCH=${BENCH:-/work/release-target/release/broker-bench}
EMBED=${EMBED:-/work/rmqtt-target/release}
OUT=${OUT:-/tmp/broker-bench}
ROUNDS=${ROUNDS:-3}
STORMS=${STORMS:-3}
DPW=device-pw
SPW=server-pw
mkdir -p "$OUT"
ulimit -n 20000

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on $1" >&2
  return 1
}

mosquitto_files() {
  local dir=$1
  mkdir -p "$dir"
  {
    echo "nguon-server:$SPW"
    echo "acl-attacker:$DPW"
    echo "acl-victim:$DPW"
    for i in $(seq 0 $((N - 1))); do printf 'bench-%05d:%s\n' "$i" "$DPW"; done
  } >"$dir/passwd"
  mosquitto_passwd -U "$dir/passwd"
  {
    for rule in "read desired" "read cmd" "read receipt" "write state" "write telemetry" "write events"; do
      set -- $rule
      echo "pattern $1 nguon/v1/d/%u/$2"
    done
    printf '\nuser nguon-server\ntopic readwrite #\n'
    printf '\nuser acl-victim\ntopic read nguon/v1/a/08003/cmd\n'
    for i in $(seq 0 $((N - 1))); do printf '\nuser bench-%05d\ntopic read nguon/v1/a/08003/cmd\n' "$i"; done
  } >"$dir/acl"
  cat >"$dir/mosquitto.conf" <<EOF
listener 18832 127.0.0.1
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl
set_tcp_nodelay true
persistence false
max_connections -1
log_dest file $dir/mosquitto.log
EOF
}

for b in $BROKERS; do
  case $b in
    rmqtt)
      port=18830
      nice -n 19 "$EMBED/rmqtt-embed" --port $port --device-password $DPW --server-password $SPW \
        >"$OUT/$b-$N.broker.log" 2>&1 &
      ;;
    rumqttd)
      port=18831
      nice -n 19 "$EMBED/rumqttd-embed" --port $port --device-password $DPW --server-password $SPW \
        >"$OUT/$b-$N.broker.log" 2>&1 &
      ;;
    mosquitto)
      port=18832
      mosquitto_files "$OUT/mosquitto-$N"
      nice -n 19 /usr/sbin/mosquitto -c "$OUT/mosquitto-$N/mosquitto.conf" >"$OUT/$b-$N.broker.log" 2>&1 &
      ;;
    *) echo "unknown broker $b" >&2; exit 2 ;;
  esac
  pid=$!
  wait_port $port
  echo "== $b ($N clients) pid $pid, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC"
  nice -n 19 "$BENCH" --url "mqtt://127.0.0.1:$port" --pid $pid --clients "$N" --rounds "$ROUNDS" \
    --storms "$STORMS" --device-password $DPW --server-password $SPW --acl-check --label "$b" \
    2>&1 | tee "$OUT/$b-$N.txt" || true
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  sleep 2
done
