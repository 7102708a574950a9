#!/usr/bin/env bash
# Benchmark: one `pvtapi-operator probe` run (DNS for every name, TCP to every address, TLS, HTTPS
# invoke) against one `curl --resolve` HTTPS GET of the same URL on the same local TLS endpoint.
# Prints the median wall time of each over N runs and the ratio probe/curl (target: <= 1.1).
#
#   bash tests/bench/probe-vs-curl.sh [N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
N="${1:-40}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pvtapi/target}"
command -v curl >/dev/null || { echo "curl missing: apt-get install -y curl" >&2; exit 1; }
DNSMASQ="$(command -v dnsmasq || echo /usr/sbin/dnsmasq)"
[[ -x "$DNSMASQ" ]] || { echo "dnsmasq missing: apt-get install -y dnsmasq-base" >&2; exit 1; }

cargo build -q --release -p pvtapi-operator
cargo build -q -p pvtapi-e2e --bin fake-apigw
PROBE="$CARGO_TARGET_DIR/release/pvtapi-operator"
API=abcde12345
HOST="$API.execute-api.us-east-1.amazonaws.com"
WORK="$(mktemp -d)"
cleanup() { kill "${FAKE_PID:-}" "${DNS_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

mkfifo "$WORK/stdin"
"$CARGO_TARGET_DIR/debug/fake-apigw" "$API" < "$WORK/stdin" > "$WORK/fake.out" &
FAKE_PID=$!
exec 9> "$WORK/stdin"
for _ in $(seq 1 100); do [[ -s "$WORK/fake.out" ]] && break; sleep 0.05; done
read -r ADDR CA < "$WORK/fake.out"
PORT="${ADDR##*:}"

DNS_PORT=$(( 20000 + RANDOM % 20000 ))
"$DNSMASQ" --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --pid-file= --user=root \
  --listen-address=127.0.0.1 --bind-interfaces --port="$DNS_PORT" --local=/amazonaws.com/ \
  --host-record="$HOST,127.0.0.1,60" 2>/dev/null &
DNS_PID=$!
sleep 0.3

probe() {
  "$PROBE" probe --api-id "$API" --region us-east-1 --stage prod --path /health --vpce vpce-0123456789abcdef0 \
    --access private-dns --nameserver "127.0.0.1:$DNS_PORT" --ca-bundle "$CA" --port "$PORT" > "$WORK/report.json"
}
curl_get() {
  curl -sS -o /dev/null --resolve "$HOST:$PORT:127.0.0.1" --cacert "$CA" "https://$HOST:$PORT/prod/health"
}

time_ms() { # median wall time in ms of N runs of "$@"
  local -a t=()
  for _ in $(seq 1 "$N"); do
    local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); t+=( $(( (e - s) / 1000 )) )
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.2f", m/1000}'
}

probe; curl_get  # warm up
grep -q '"class":"Ok"' "$WORK/report.json" || { echo "probe did not succeed:"; cat "$WORK/report.json"; exit 1; }
P=$(time_ms probe)
C=$(time_ms curl_get)
echo "runs: $N each, median wall time"
echo "pvtapi-operator probe: ${P} ms   (timings of one run: $(sed -n 's/.*"timings":\({[^}]*}\).*/\1/p' "$WORK/report.json"))"
echo "curl --resolve       : ${C} ms"
awk -v p="$P" -v c="$C" 'BEGIN { printf "ratio probe/curl     : %.2f (target <= 1.10)\n", p / c }'
