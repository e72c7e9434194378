#!/bin/sh
# The .deb install check (issue 16): build the nguon-server, nguon-agent and nguon-provision
# packages with cargo-deb, install them on this machine (root), start the server as its unit
# would (user, environment and ExecStart read from the installed unit; systemd need not be
# PID 1), check /healthz, stop it with SIGTERM (the unit's stop), then purge everything the
# packages made (user nguon, /etc/nguon, /var/lib/nguon) unless KEEP=1.
#
#   sudo scripts/deb-install-test.sh                 # release build (slow: a full release build)
#   NGUON_DEB_PROFILE=dev scripts/deb-install-test.sh  # package the existing dev build (seconds)
#
# Ports: HTTP_PORT (19450) and MQTT_PORT (19451) override the packaged config's 8080/1883.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (dpkg -i)" >&2; exit 2; }
command -v cargo-deb >/dev/null || { echo "cargo install cargo-deb --locked" >&2; exit 2; }
getent passwd nguon >/dev/null && { echo "a user nguon exists already: not touching it" >&2; exit 2; }
profile="${NGUON_DEB_PROFILE:-release}"
http="${HTTP_PORT:-19450}" mqtt="${MQTT_PORT:-19451}"
pkgs="nguon-server nguon-agent nguon-provision"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    if [ "${KEEP:-0}" != 1 ]; then
        dpkg --purge $pkgs >/dev/null 2>&1 || true
        rm -rf /var/lib/nguon /var/lib/nguon-agent
        getent passwd nguon >/dev/null && deluser --system nguon >/dev/null 2>&1 || true
        getent group nguon >/dev/null && delgroup --system nguon >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

for p in $pkgs; do
    if [ "$profile" = release ]; then
        cargo deb -p "$p" --fast
    else
        cargo build --workspace --quiet
        cargo deb -p "$p" --no-build --profile "$profile" --fast 2>/dev/null
    fi
done
dpkg -i $(for p in $pkgs; do ls -t target/debian/${p}_*.deb | head -n 1; done)
for f in /usr/bin/nguon-server /usr/bin/nguon-agent /usr/bin/nguon-provision /etc/nguon/server.toml; do
    [ -e "$f" ] || { echo "not installed: $f" >&2; exit 1; }
done
[ "$(stat -c %U:%G:%a /etc/nguon)" = root:nguon:750 ] || { echo "/etc/nguon: $(stat -c %U:%G:%a /etc/nguon)" >&2; exit 1; }

# The unit, as systemd would run it: User=, Environment=, EnvironmentFile=, StateDirectory=.
unit=$(ls /lib/systemd/system/nguon-server.service /usr/lib/systemd/system/nguon-server.service 2>/dev/null | head -n 1)
user=$(sed -n 's/^User=//p' "$unit")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
state=$(sed -n 's/^StateDirectory=//p' "$unit")
install -d -m 0700 -o "$user" -g "$user" "/var/lib/$state"
envs=$(sed -n 's/^Environment=//p' "$unit" | tr '\n' ' ')
# shellcheck disable=SC2086
runuser -u "$user" -- env $envs NGUON_HTTP_ADDR="127.0.0.1:$http" NGUON_MQTT_ADDR="127.0.0.1:$mqtt" \
    $exec_start >/tmp/nguon-deb-server.log 2>&1 &
pid=$!
ok=""
for _ in $(seq 1 60); do
    if curl -sf "http://127.0.0.1:$http/healthz" >/dev/null; then ok=1; break; fi
    sleep 1
done
[ -n "$ok" ] || { echo "no /healthz; log:" >&2; tail -n 20 /tmp/nguon-deb-server.log >&2; exit 1; }
echo "healthz ok: $(curl -sf "http://127.0.0.1:$http/healthz")"
server=$(pgrep -P "$pid" -x nguon-server || echo "$pid")
kill -TERM "$server"
wait "$pid" && echo "stopped cleanly on SIGTERM" || { echo "exit status $? on SIGTERM" >&2; exit 1; }
pid=""
