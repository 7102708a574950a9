#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, skipping what is present:
#   - Debian: dnsmasq-base (DNS server), iproute2 (network namespaces), openssl, curl, and for the
#             local cluster's node: containerd, runc, containernetworking-plugins, iptables
#             (kube-proxy), binutils (strip, for the image)
#   - PyPI:   moto[server] (pinned) for the AWS APIs
#   - npm:    @cloud-copilot/iam-simulate (test-only oracle for the policy differential test)
#   - Go:     etcd, kube-apiserver, kubectl, kube-scheduler, kube-controller-manager, kubelet,
#             kube-proxy, helm and kube-network-policies built from the upstream modules
#             (build-tools.sh)
# Idempotent: a second run only checks.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
AWSCLI_VERSION="${AWSCLI_VERSION:-1.45.11}"
log() { printf '[install] %s\n' "$*" >&2; }

need_apt=()
command -v dnsmasq >/dev/null || [[ -x /usr/sbin/dnsmasq ]] || need_apt+=(dnsmasq-base)
command -v ip >/dev/null || [[ -x /usr/sbin/ip ]] || need_apt+=(iproute2)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || need_apt+=(ca-certificates)  # the pvtapi image's root CAs
command -v containerd >/dev/null && command -v ctr >/dev/null || need_apt+=(containerd)
command -v runc >/dev/null || [[ -x /usr/sbin/runc ]] || need_apt+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || need_apt+=(containernetworking-plugins)
command -v iptables >/dev/null || [[ -x /usr/sbin/iptables ]] || need_apt+=(iptables)
command -v strip >/dev/null || need_apt+=(binutils)
command -v nsenter >/dev/null && command -v unshare >/dev/null || need_apt+=(util-linux)
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

have_moto="$(python3 -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true)"
if [[ "$have_moto" != "$MOTO_VERSION" ]] || ! command -v moto_server >/dev/null || ! python3 -c 'import flask, flask_cors' 2>/dev/null; then
  log "pip install moto[server]==$MOTO_VERSION (have: ${have_moto:-none})"
  python3 -m pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  hash -r
fi
command -v moto_server >/dev/null || { log "ERROR: moto_server not on PATH after pip install (PATH=$PATH)"; exit 1; }

# The AWS CLI runs the diagnosis's ready-to-apply fixes against moto (tests/scenarios afterFix).
# Any v1 or v2 works; installed into its own venv so its botocore pin never fights moto's.
if ! command -v aws >/dev/null; then
  AWSCLI_VENV="${PVTAPI_CACHE:-$HOME/.cache/pvtapi}/awscli"
  log "installing the AWS CLI (pip awscli==$AWSCLI_VERSION) into $AWSCLI_VENV"
  python3 -m venv "$AWSCLI_VENV"
  "$AWSCLI_VENV/bin/pip" install -q --disable-pip-version-check "awscli==$AWSCLI_VERSION"
  ln -sf "$AWSCLI_VENV/bin/aws" /usr/local/bin/aws
  hash -r
fi
command -v aws >/dev/null || { log "ERROR: aws not on PATH after installing awscli"; exit 1; }

# The independent IAM policy evaluator used only by the differential test (npm, test-only).
DIFF="$HERE/../differential"
command -v node >/dev/null && command -v npm >/dev/null || { log "ERROR: node/npm not found (Node >= 20 is needed for tests/differential)"; exit 1; }
if [[ ! -f "$DIFF/node_modules/.package-lock.json" ]] || ! cmp -s "$DIFF/package-lock.json" "$DIFF/.installed-lock"; then
  log "npm ci --prefix tests/differential"
  npm ci --prefix "$DIFF" --no-audit --no-fund --loglevel=error >/dev/null
  cp "$DIFF/package-lock.json" "$DIFF/.installed-lock"
fi

"$HERE/build-tools.sh"
log "all peers installed"
