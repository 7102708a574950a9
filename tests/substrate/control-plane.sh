#!/usr/bin/env bash
# A real Kubernetes control plane for the end-to-end tests: etcd + kube-apiserver on 127.0.0.1,
# RBAC authorization, service-account token signing, client-certificate auth for the admin.
#
#   tests/substrate/control-plane.sh start   # start (or reuse a healthy running one), print env lines
#   tests/substrate/control-plane.sh env     # print the env lines of the running one
#   tests/substrate/control-plane.sh stop    # stop it and delete its state
#
# The env lines (`export PVTAPI_KUBECONFIG=…`) are what the Rust tests read: the admin
# kubeconfig, and the directory of the kubectl built with the apiserver. Tests mint restricted
# identities themselves (ServiceAccount + RBAC + TokenRequest), which is what the operator uses.
#
# There is no kube-controller-manager, scheduler or kubelet: no garbage collection, no namespace
# finalization, pods stay Pending unless a test writes their status (see shared/peers.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE="${PVTAPI_CACHE:-$HOME/.cache/pvtapi}"
BIN_K8S="$CACHE/tools/k8s-$K8S_VERSION"
BIN_ETCD="$CACHE/tools/etcd-$ETCD_VERSION"
STATE="${PVTAPI_CP_STATE:-$CACHE/run/control-plane}"
APISERVER_PORT="${PVTAPI_APISERVER_PORT:-16443}"
ETCD_PORT="${PVTAPI_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${PVTAPI_ETCD_PEER_PORT:-12380}"
READY_TIMEOUT="${PVTAPI_APISERVER_READY_TIMEOUT:-120}"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

print_env() {
  echo "export PVTAPI_KUBECONFIG=$STATE/admin.kubeconfig"
  echo "export PVTAPI_KUBE_BIN=$BIN_K8S"
  echo "export PVTAPI_APISERVER_LOG=$STATE/kube-apiserver.log"
}

healthy() {
  [[ -f "$STATE/admin.kubeconfig" ]] || return 1
  curl -sf --max-time 2 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

stop() {
  for p in kube-apiserver etcd; do
    if [[ -f "$STATE/$p.pid" ]]; then
      local pid; pid="$(cat "$STATE/$p.pid")"
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$STATE/$p.pid"
    fi
  done
  rm -rf "$STATE"
  log "stopped"
}

pki() {
  local d="$STATE/pki"; mkdir -p "$d"
  command -v openssl >/dev/null || die "openssl not found: apt-get install -y openssl"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pvtapi-test-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  # Serving certificate for 127.0.0.1 / localhost.
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > "$d/apiserver.ext"
  openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/apiserver.ext" -out "$d/apiserver.crt" 2>/dev/null
  # Admin client certificate: group system:masters.
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=pvtapi-admin" -keyout "$d/admin.key" -out "$d/admin.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' > "$d/client.ext"
  openssl x509 -req -in "$d/admin.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/client.ext" -out "$d/admin.crt" 2>/dev/null
  # Service-account token signing key pair.
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

kubeconfig() {
  local d="$STATE/pki"
  cat > "$STATE/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pvtapi-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 < "$d/ca.crt")
users:
- name: pvtapi-admin
  user:
    client-certificate-data: $(base64 -w0 < "$d/admin.crt")
    client-key-data: $(base64 -w0 < "$d/admin.key")
contexts:
- name: pvtapi-test
  context: {cluster: pvtapi-test, user: pvtapi-admin, namespace: default}
current-context: pvtapi-test
EOF
}

start() {
  if healthy; then log "already running on 127.0.0.1:$APISERVER_PORT"; print_env; return; fi
  [[ -x "$BIN_ETCD/etcd" && -x "$BIN_K8S/kube-apiserver" ]] || \
    die "control-plane binaries missing in $BIN_K8S / $BIN_ETCD; run tests/substrate/build-tools.sh (needs Go and the Go module proxy)"
  stop 2>/dev/null || true
  mkdir -p "$STATE"
  pki
  log "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
  "$BIN_ETCD/etcd" --name pvtapi --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "pvtapi=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=$((2*1024*1024*1024)) \
    > "$STATE/etcd.log" 2>&1 &
  echo $! > "$STATE/etcd.pid"
  for _ in $(seq 1 100); do
    curl -sf --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && break
    kill -0 "$(cat "$STATE/etcd.pid")" 2>/dev/null || { tail -n 30 "$STATE/etcd.log" >&2; die "etcd exited"; }
    sleep 0.2
  done
  curl -sf --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" >/dev/null || { tail -n 30 "$STATE/etcd.log" >&2; die "etcd not healthy after 20s"; }

  log "starting kube-apiserver $K8S_VERSION on 127.0.0.1:$APISERVER_PORT"
  local d="$STATE/pki"
  "$BIN_K8S/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address 127.0.0.1 \
    --cert-dir "$STATE/apiserver-certs" --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" \
    --authorization-mode RBAC --anonymous-auth=false \
    --service-cluster-ip-range 10.0.0.0/24 \
    --service-account-issuer "https://kubernetes.default.svc" \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --disable-admission-plugins ServiceAccount \
    --allow-privileged=false \
    --profiling=false \
    > "$STATE/kube-apiserver.log" 2>&1 &
  echo $! > "$STATE/kube-apiserver.pid"
  kubeconfig
  local waited=0
  until healthy; do
    if ! kill -0 "$(cat "$STATE/kube-apiserver.pid")" 2>/dev/null; then
      log "kube-apiserver exited; last lines of $STATE/kube-apiserver.log:"; tail -n 40 "$STATE/kube-apiserver.log" >&2
      die "kube-apiserver did not start"
    fi
    if (( waited >= READY_TIMEOUT * 5 )); then
      log "kube-apiserver not ready after ${READY_TIMEOUT}s; /readyz says:"
      curl -s --max-time 2 --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" \
        "https://127.0.0.1:$APISERVER_PORT/readyz?verbose" >&2 || true
      log "last lines of $STATE/kube-apiserver.log:"; tail -n 40 "$STATE/kube-apiserver.log" >&2
      die "kube-apiserver not ready"
    fi
    sleep 0.2; waited=$((waited + 1))
  done
  log "ready after ~$((waited / 5))s; admin kubeconfig: $STATE/admin.kubeconfig"
  print_env
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) healthy || die "not running; run: $0 start"; print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
