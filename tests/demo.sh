#!/usr/bin/env bash
# The article's failures, as `kubectl pvtapi check --local` shows them to a person — on local real
# peers (moto_server for AWS, dnsmasq, a TLS listener playing API Gateway, a network-namespace
# blackhole for the security-group timeout). Nothing leaves the machine.
#
#   bash tests/demo.sh            # every scenario in tests/scenarios/, human report for each
#
# Needs the peers `tests/substrate/install.sh` installs and root (network namespaces).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pvtapi/target}"
for tool in moto_server dnsmasq ip; do
    command -v "$tool" >/dev/null || { echo "demo: $tool is missing: run bash tests/substrate/install.sh" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "demo: needs root for network namespaces (sudo bash tests/demo.sh)" >&2; exit 2; }
echo "building and running $(ls tests/scenarios/*.yaml | wc -l) scenarios (first build takes minutes)…" >&2
PVTAPI_SHOW_REPORTS=1 cargo test -q -p kubectl-pvtapi --test scenarios -- --nocapture 2>&1 \
    | grep -v -E '^(running [0-9]+ tests?|test result:.*|\.+)$' || true
