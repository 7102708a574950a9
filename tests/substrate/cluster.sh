#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine, offline: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy, containerd + runc, a CNI bridge, a kubelet,
# a dnsmasq on the bridge address that is both the cluster DNS and the "VPC resolver", and
# kube-network-policies deciding NetworkPolicies (PVTAPI_NETWORK_POLICIES=off: not started).
#
#   tests/substrate/cluster.sh start   # start (or reuse a healthy one), (re)import the images, print env lines
#   tests/substrate/cluster.sh env     # print the env lines of the running cluster
#   tests/substrate/cluster.sh image   # rebuild the pvtapi image from the current binary and import it
#   tests/substrate/cluster.sh restart-apiserver  # a fault for the operator suites: the apiserver goes away and comes back
#   tests/substrate/cluster.sh status  # one line per component
#   tests/substrate/cluster.sh stop    # stop everything and remove every trace (idempotent)
#
# Why each unusual setting is here (shared/node.md has the failures that found them):
# - The node's address is a bridge we create (a loopback node IP is refused). Pods sit on that
#   /24 — by default 10.0.2.0/24, a subnet of the VPC the AWS test worlds model (10.0.0.0/16) — and
#   get routes to the VPC range and the Service range through the bridge address only: no default
#   route. The host never forwards (ip_forward stays as found, the CNI bridge is not a gateway),
#   and blackhole routes for the VPC and Service ranges drop anything no local address answers,
#   so no pod or test packet can leave the machine.
# - The apiserver binds the bridge address and advertises it, so the `kubernetes` Service
#   (kube-proxy, iptables mode) takes pods with in-cluster config to it.
# - containerd and the kubelet run inside one private mount namespace whose /run, /var/lib and
#   /var/log are tmpfs: every overlay, netns, shm and volume mount, and the fixed host paths the
#   kubelet and CNI write whatever their config says (/var/lib/kubelet, /var/lib/cni,
#   /var/log/pods, /run/containerd), live and die with that namespace.
# - cgroup v1 host: kubelet `failCgroupV1: false`, cgroupfs driver, cgroupRoot /pvtapi. No
#   CAP_SYS_RESOURCE: containerd `restrict_oom_score_adj`, kubelet `oomScoreAdj: 0`.
# - No registry exists and nothing may be looked up outside: every registry is a dead loopback
#   port (certs.d/_default), images are OCI layouts built here and imported; the apiserver reaches
#   the kubelet by InternalIP, never by resolving the node name.
# - NetworkPolicies: kube-network-policies (sigs.k8s.io, built by build-tools.sh) decides the
#   first packet of every new connection in userspace, from NFQUEUE, with the policies, pods and
#   namespaces it watches. It cannot hook that queue itself here: it writes nftables rules with
#   the `queue` expression, and this kernel has no nft_queue (CONFIG_NFT_QUEUE unset, no module
#   loading; its rule sync fails with "netlink receive: no such file or directory"). So the
#   queue is fed by iptables' NFQUEUE target (xt, through nft_compat) from chain PVTAPI-NETPOL in
#   table mangle: new connections arriving from the bridge (pod -> pod, pod -> anything routed,
#   and pod -> the node's own addresses: the endpoint addresses tests add to the bridge, the DNS,
#   the apiserver) and new connections forwarded to the bridge. Every pod's new connection goes
#   to userspace (its own rules would send only those of pods a policy selects; it sends all with
#   its AdminNetworkPolicy flags on); a pod no policy selects is allowed. Connections the host
#   opens (kubelet probes, tests: root) are not queued, as its own `meta skuid 0 accept` would let
#   them through. `--queue-bypass` and its --fail-open: when it is not running, or its queue is
#   full, packets pass; while it runs but does not answer (stopped), new pod connections wait.
#   What it cannot decide: a pod's packets before its IP reaches it through the apiserver (pod
#   status; it would learn it from containerd over NRI, which containerd 1.6 lacks) are allowed —
#   measured, the first ~10-30 ms after a container starts, so a fresh probe pod's first DNS
#   lookups usually pass. A policy decides new connections only, never established ones.
#
# Everything lives under $PVTAPI_CACHE/run/cluster (override: PVTAPI_CLUSTER_STATE).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"  # as in build-tools.sh
KNP_VERSION="${KNP_VERSION:-v0.8.0}"     # as in build-tools.sh
CACHE="${PVTAPI_CACHE:-$HOME/.cache/pvtapi}"
BIN_K8S="$CACHE/tools/k8s-$K8S_VERSION"
BIN_ETCD="$CACHE/tools/etcd-$ETCD_VERSION"
BIN_KNP="$CACHE/tools/kube-network-policies-$KNP_VERSION"
STATE="${PVTAPI_CLUSTER_STATE:-$CACHE/run/cluster}"
NODE_NAME="${PVTAPI_NODE_NAME:-pvtapi-node}"
BRIDGE="${PVTAPI_BRIDGE:-pvtapi0}"
POD_CIDR="${PVTAPI_POD_CIDR:-10.0.2.0/24}"
VPC_CIDR="${PVTAPI_VPC_CIDR:-10.0.0.0/16}"
SERVICE_CIDR="${PVTAPI_SERVICE_CIDR:-10.96.0.0/24}"
APISERVER_PORT="${PVTAPI_APISERVER_PORT:-16443}"
ETCD_PORT="${PVTAPI_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${PVTAPI_ETCD_PEER_PORT:-12380}"
READY_TIMEOUT="${PVTAPI_CLUSTER_READY_TIMEOUT:-120}"
CGROUP_ROOT="pvtapi"
OPERATOR_BIN="${PVTAPI_OPERATOR_BIN:-${CARGO_TARGET_DIR:-$CACHE/target}/debug/pvtapi-operator}"
IMAGE_REF="pvtapi.local/pvtapi-operator:dev"
PAUSE_REF="pvtapi.local/pause:1"
HOG_REF="pvtapi.local/hog:1"  # `pause alloc 64` whatever the args: a container that is OOM-killed under 64 MiB
KUBECTL_REF="pvtapi.local/kubectl:$K8S_VERSION"
CNI_BIN_DIR="${PVTAPI_CNI_BIN_DIR:-/usr/lib/cni}"
NETWORK_POLICIES="${PVTAPI_NETWORK_POLICIES:-enforced}"  # enforced | off
KNP_QUEUE=100                       # the NFQUEUE number (its default)
KNP_METRICS="127.0.0.1:16280"       # its Prometheus listener (it cannot be turned off)
KNP_TABLE="kube-network-policies"   # the nftables table it would write (inet family) where it can
NETPOL_CHAIN="PVTAPI-NETPOL"        # ours, in table mangle: what goes to the queue

# Derived addresses: the node (= bridge, DNS, apiserver) is .1 of the pod /24; pods get .100-.250,
# leaving .2-.99 for the test worlds' "endpoint ENI" addresses on the same link.
POD_NET="${POD_CIDR%/*}"; POD_PREFIX="${POD_NET%.*}"
NODE_IP="${PVTAPI_NODE_IP:-$POD_PREFIX.1}"
SVC_NET="${SERVICE_CIDR%/*}"; KUBERNETES_SVC_IP="${SVC_NET%.*}.1"
MNTNS="$STATE/ns/mnt"
# The kubelet sets these host sysctls at start (protectKernelDefaults: false, the only way it
# starts here); start saves them and stop puts them back.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
in_ns() { nsenter --mount="$MNTNS" -- "$@"; }
kubectl_admin() { "$BIN_K8S/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

print_env() {
  cat <<EOF
export PVTAPI_KUBECONFIG=$STATE/admin.kubeconfig
export PVTAPI_KUBE_BIN=$BIN_K8S
export PVTAPI_HELM=$CACHE/tools/helm-$HELM_VERSION/helm
export PVTAPI_APISERVER_LOG=$STATE/log/kube-apiserver.log
export PVTAPI_CLUSTER_STATE=$STATE
export PVTAPI_NODE_NAME=$NODE_NAME
export PVTAPI_NODE_IP=$NODE_IP
export PVTAPI_BRIDGE=$BRIDGE
export PVTAPI_SERVICE_CIDR=$SERVICE_CIDR
export PVTAPI_POD_CIDR=$POD_CIDR
export PVTAPI_POD_RANGE=$POD_PREFIX.100-$POD_PREFIX.250
export PVTAPI_VPC_CIDR=$VPC_CIDR
export PVTAPI_CLUSTER_DNS=$NODE_IP
export PVTAPI_DNS_HOSTS_DIR=$STATE/dns/hosts.d
export PVTAPI_IMAGE=$IMAGE_REF
export PVTAPI_OPERATOR_BIN=$OPERATOR_BIN
export PVTAPI_IMAGE_DIGEST=$(cat "$STATE/images/pvtapi.digest" 2>/dev/null)
export PVTAPI_PAUSE_IMAGE=$PAUSE_REF
export PVTAPI_HOG_IMAGE=$HOG_REF
export PVTAPI_KUBECTL_IMAGE=$KUBECTL_REF
export PVTAPI_NETWORK_POLICIES=$(cat "$STATE/network-policies" 2>/dev/null)
EOF
}

# ---------------------------------------------------------------------------------------------
# stop: processes, iptables, routes, links, mounts, cgroups, state — each step tolerant of absence.
# ---------------------------------------------------------------------------------------------
kill_pidfile() {
  local f="$STATE/pid/$1.pid" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

purge_kube_chains() {
  # What `kube-proxy --cleanup` leaves (KUBE-FIREWALL and the jumps to it, in both families):
  # every KUBE-* chain and every rule jumping to one is kube-proxy's.
  local cmd table rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle; do
      "$cmd" -t "$table" -S >/dev/null 2>&1 || continue
      while read -r rule; do
        eval "set -- $rule"; shift    # drop "-A"
        "$cmd" -t "$table" -D "$@" 2>/dev/null || true
      done < <("$cmd" -t "$table" -S | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -vE '^-A KUBE-')
      for chain in $("$cmd" -t "$table" -S | awk '/^-N KUBE-/{print $2}'); do "$cmd" -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in $("$cmd" -t "$table" -S | awk '/^-N KUBE-/{print $2}'); do "$cmd" -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
}

purge_netpol_rules() {
  # Our queue hooks (the jumps to PVTAPI-NETPOL in mangle, then the chain), and the nftables table
  # kube-network-policies would leave where the kernel has nft_queue (it deletes it only on SIGINT).
  local rule
  if iptables -t mangle -S "$NETPOL_CHAIN" >/dev/null 2>&1; then
    while read -r rule; do
      eval "set -- $rule"; shift    # drop "-A"
      iptables -t mangle -D "$@" 2>/dev/null || true
    done < <(iptables -t mangle -S | grep -E "^-A (INPUT|FORWARD) .*-j $NETPOL_CHAIN\$")
    iptables -t mangle -F "$NETPOL_CHAIN" 2>/dev/null || true
    iptables -t mangle -X "$NETPOL_CHAIN" 2>/dev/null || true
  fi
  if command -v nft >/dev/null; then nft delete table inet "$KNP_TABLE" 2>/dev/null || true; fi
}

cgroup_dirs() {  # every cgroup directory of ours, deepest first
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -d "$h$CGROUP_ROOT" ]] && find "$h$CGROUP_ROOT" -depth -type d
  done
  return 0
}

stop() {
  [[ -d "$STATE" ]] || { log "not running (no $STATE)"; return 0; }
  # The policy decider (from here on queued packets pass: bypass), the kubelet so it restarts
  # nothing, then the containers' processes (all in our cgroups), the shims, containerd, and the
  # control plane.
  kill_pidfile kube-network-policies
  kill_pidfile kubelet
  local d pids
  for _ in 1 2 3; do
    pids="$(cgroup_dirs | while read -r d; do cat "$d/cgroup.procs" 2>/dev/null; done | sort -u)"
    [[ -n "$pids" ]] || break
    kill -9 $pids 2>/dev/null || true
    sleep 0.2
  done
  pids="$(pgrep -f -- "-address $STATE/containerd/containerd.sock" || true)"
  [[ -n "$pids" ]] && kill -9 $pids 2>/dev/null || true
  for p in containerd kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd dnsmasq; do kill_pidfile "$p"; done
  # kube-proxy's iptables chains (it knows its own rules; nothing else of the host is touched).
  if [[ -x "$BIN_K8S/kube-proxy" && -f "$STATE/kube-proxy.yaml" ]]; then
    "$BIN_K8S/kube-proxy" --cleanup --config "$STATE/kube-proxy.yaml" >"$STATE/log/kube-proxy-cleanup.log" 2>&1 || true
  fi
  purge_kube_chains
  purge_netpol_rules
  for d in $(cgroup_dirs); do rmdir "$d" 2>/dev/null || true; done
  if [[ -f "$STATE/sysctl.before" ]]; then sysctl -q -p "$STATE/sysctl.before" >/dev/null 2>&1 || true; fi
  ip route del blackhole "$VPC_CIDR" 2>/dev/null || true
  ip route del blackhole "$SERVICE_CIDR" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  # The private mount namespace: dropping its last reference unmounts everything inside it.
  if mountpoint -q "$MNTNS" 2>/dev/null; then umount "$MNTNS" 2>/dev/null || umount -l "$MNTNS" || true; fi
  if mountpoint -q "$STATE/ns" 2>/dev/null; then umount "$STATE/ns" 2>/dev/null || umount -l "$STATE/ns" || true; fi
  local left
  left="$(cgroup_dirs)"
  [[ -z "$left" ]] || log "WARNING: cgroups still present: $left"
  rm -rf "$STATE"
  log "stopped"
}

# ---------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------
require() {
  local missing=() b
  for b in etcd:"$BIN_ETCD/etcd" kube-apiserver:"$BIN_K8S/kube-apiserver" kubectl:"$BIN_K8S/kubectl" \
           kube-controller-manager:"$BIN_K8S/kube-controller-manager" kube-scheduler:"$BIN_K8S/kube-scheduler" \
           kubelet:"$BIN_K8S/kubelet" kube-proxy:"$BIN_K8S/kube-proxy"; do
    [[ -x "${b#*:}" ]] || missing+=("${b%%:*}")
  done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]} in $BIN_K8S / $BIN_ETCD: run tests/substrate/build-tools.sh (or tests/substrate/install.sh)"
  for b in containerd ctr runc dnsmasq iptables ip nsenter unshare openssl curl python3 go; do
    command -v "$b" >/dev/null || die "'$b' not found: run tests/substrate/install.sh"
  done
  for b in bridge host-local loopback; do
    [[ -x "$CNI_BIN_DIR/$b" ]] || die "CNI plugin $CNI_BIN_DIR/$b not found: apt-get install containernetworking-plugins (tests/substrate/install.sh)"
  done
  case "$NETWORK_POLICIES" in
    enforced) [[ -x "$BIN_KNP/kube-network-policies" ]] \
      || die "missing $BIN_KNP/kube-network-policies: run tests/substrate/build-tools.sh knp (or PVTAPI_NETWORK_POLICIES=off)" ;;
    off) ;;
    *) die "PVTAPI_NETWORK_POLICIES=$NETWORK_POLICIES: 'enforced' or 'off'" ;;
  esac
  [[ -x "$OPERATOR_BIN" ]] || die "the operator binary $OPERATOR_BIN is missing: cargo build -p pvtapi-operator (or set PVTAPI_OPERATOR_BIN)"
  [[ $(id -u) -eq 0 ]] || die "the local cluster needs root (bridges, mount namespaces, cgroups)"
}

healthy() {
  [[ -f "$STATE/admin.kubeconfig" && -f "$STATE/started" ]] || return 1
  local p
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy containerd kubelet dnsmasq; do
    kill -0 "$(cat "$STATE/pid/$p.pid" 2>/dev/null)" 2>/dev/null || return 1
  done
  # When it enforces NetworkPolicies: its decider alive and its queue hooks in place.
  if [[ "$(cat "$STATE/network-policies" 2>/dev/null)" == enforced ]]; then
    kill -0 "$(cat "$STATE/pid/kube-network-policies.pid" 2>/dev/null)" 2>/dev/null || return 1
    iptables -t mangle -S "$NETPOL_CHAIN" >/dev/null 2>&1 || return 1
  fi
  curl -sf --max-time 2 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" \
    "https://$NODE_IP:$APISERVER_PORT/readyz" >/dev/null 2>&1 || return 1
  [[ "$(kubectl_admin get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

cert() {  # cert NAME SUBJECT EXTENSIONS — an EC P-256 key and a certificate signed by the cluster CA
  local d="$STATE/pki" name="$1" subj="$2" ext="$3"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
    -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$d/$name.ext"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 7 \
    -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr" "$d/$name.ext"
}

pki() {
  local d="$STATE/pki"; mkdir -p "$d"; chmod 700 "$d"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=pvtapi-cluster-ca" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
  local client="extendedKeyUsage=clientAuth"
  cert admin "/O=system:masters/CN=pvtapi-admin" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  cert kube-proxy "/CN=system:kube-proxy" "$client"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" "$client"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

kubeconfig() {  # kubeconfig NAME CERT
  local d="$STATE/pki"
  cat > "$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pvtapi
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 < "$d/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 < "$d/$2.crt")
    client-key-data: $(base64 -w0 < "$d/$2.key")
contexts:
- name: pvtapi
  context: {cluster: pvtapi, user: $1, namespace: default}
current-context: pvtapi
EOF
  chmod 600 "$STATE/$1.kubeconfig"
}

spawn() {  # spawn NAME CMD... — background process, output to log/NAME.log, pid to pid/NAME.pid
  local name="$1"; shift
  "$@" > "$STATE/log/$name.log" 2>&1 &
  echo $! > "$STATE/pid/$name.pid"
}

alive_or_die() {
  kill -0 "$(cat "$STATE/pid/$1.pid")" 2>/dev/null && return 0
  log "$1 exited; last lines of $STATE/log/$1.log:"; tail -n 40 "$STATE/log/$1.log" >&2
  die "$1 did not start"
}

wait_for() {  # wait_for WHAT SECONDS COMPONENT CMD... — poll CMD every 0.2 s while COMPONENT lives
  local what="$1" secs="$2" comp="$3"; shift 3
  local i
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    [[ -z "$comp" ]] || alive_or_die "$comp"
    sleep 0.2
  done
  [[ -z "$comp" ]] || { log "last lines of $STATE/log/$comp.log:"; tail -n 40 "$STATE/log/$comp.log" >&2; }
  die "$what not ready after ${secs}s"
}

network() {
  # A fixed MAC (locally administered): a bridge without one takes the lowest of its ports' MACs,
  # so deleting the pod whose veth held it changed the node's MAC under every other pod, and a
  # running pod that had it in its ARP cache lost the node (DNS, apiserver, the bridge's endpoint
  # addresses) until it re-resolved it — 53 s measured.
  ip link add "$BRIDGE" address 02:70:76:74:00:01 type bridge
  ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Anything in the VPC or Service ranges that no local address, pod or test namespace answers
  # is dropped here instead of following the default route off the machine.
  ip route add blackhole "$VPC_CIDR"
  ip route add blackhole "$SERVICE_CIDR"
}

dns() {
  # The cluster DNS and the "VPC resolver": tests drop hosts files into hosts.d (read on change).
  # Names under amazonaws.com and cluster.local that no file lists are NXDOMAIN; anything else is
  # REFUSED: nothing is forwarded to the machine's own resolver.
  mkdir -p "$STATE/dns/hosts.d"
  printf '%s kubernetes.default.svc.cluster.local\n' "$KUBERNETES_SVC_IP" > "$STATE/dns/hosts.d/00-cluster"
  spawn dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --pid-file= --user=root \
    --listen-address="$NODE_IP" --bind-interfaces --port=53 \
    --hostsdir="$STATE/dns/hosts.d" --local=/amazonaws.com/ --local=/cluster.local/ --domain-needed \
    --log-queries --log-facility=-
  wait_for "dnsmasq" 10 dnsmasq bash -c "exec 3<>/dev/tcp/$NODE_IP/53"
}

apiserver() {  # start kube-apiserver and wait for /readyz (also: restart-apiserver)
  # On a loaded 2-core machine the apiserver sometimes exits on its own before it is ready (seen:
  # "APF bootstrap … timed out waiting for cache sync" in a post-start hook, while fuzzers and a
  # test suite shared the CPU): start it again, up to three times, keeping each failed log.
  local attempt
  for attempt in 1 2 3; do
    apiserver_once && return 0
    log "kube-apiserver exited before /readyz (attempt $attempt); last lines of its log:"
    tail -n 15 "$STATE/log/kube-apiserver.log" >&2
    kill_pidfile kube-apiserver
    cp "$STATE/log/kube-apiserver.log" "$STATE/log/kube-apiserver.attempt$attempt.log"
  done
  die "kube-apiserver not ready after 3 attempts (logs: $STATE/log/kube-apiserver.attempt*.log)"
}

apiserver_once() {  # one start of kube-apiserver; 0 once /readyz answers, 1 if it exits or times out
  local d="$STATE/pki" i
  log "kube-apiserver $K8S_VERSION on $NODE_IP:$APISERVER_PORT"
  spawn kube-apiserver "$BIN_K8S/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$NODE_IP" --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
    --cert-dir "$STATE/apiserver-certs" --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" \
    --authorization-mode Node,RBAC --anonymous-auth=false \
    --enable-admission-plugins NodeRestriction \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer "https://kubernetes.default.svc" \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --kubelet-client-certificate "$d/apiserver-kubelet-client.crt" --kubelet-client-key "$d/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --allow-privileged=false --profiling=false
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    curl -sf --max-time 2 --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" \
      "https://$NODE_IP:$APISERVER_PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$STATE/pid/kube-apiserver.pid")" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

control_plane() {
  local d="$STATE/pki"
  log "etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
  spawn etcd "$BIN_ETCD/etcd" --name pvtapi --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "pvtapi=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=$((2 * 1024 * 1024 * 1024))
  wait_for "etcd" 20 etcd curl -sf --max-time 1 "http://127.0.0.1:$ETCD_PORT/health"

  apiserver
  # The apiserver's identity towards the kubelet (logs, exec, port-forward).
  kubectl_admin create clusterrolebinding pvtapi:apiserver-kubelet-client \
    --clusterrole system:kubelet-api-admin --user kube-apiserver-kubelet-client >/dev/null

  log "kube-controller-manager, kube-scheduler"
  spawn kube-controller-manager "$BIN_K8S/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" --secure-port 0 --leader-elect=false \
    --use-service-account-credentials --root-ca-file "$d/ca.crt" --service-account-private-key-file "$d/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-name pvtapi \
    --node-monitor-grace-period 20s --profiling=false
  spawn kube-scheduler "$BIN_K8S/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" --secure-port 0 --leader-elect=false --profiling=false
}

kube_proxy() {
  cat > "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:16256
metricsBindAddress: 127.0.0.1:16249
nodePortAddresses: ["$NODE_IP/32"]
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  spawn kube-proxy "$BIN_K8S/kube-proxy" --config "$STATE/kube-proxy.yaml"
}

mount_namespace() {
  # A persistent private mount namespace (bind-mounted on $MNTNS, which needs a private parent).
  mkdir -p "$STATE/ns"
  mount --bind "$STATE/ns" "$STATE/ns"
  mount --make-private "$STATE/ns"
  touch "$MNTNS"
  unshare --mount="$MNTNS" --propagation private -- sh -euc '
    for d in /run /var/lib /var/log; do mount -t tmpfs -o mode=0755 pvtapi-node "$d"; done
    mkdir -p /var/log/pods /var/log/containers /var/lib/kubelet /var/lib/containerd /run/containerd'
}

containerd_start() {
  local c="$STATE/containerd"
  mkdir -p "$c/certs.d/_default" "$STATE/cni/net.d"
  # Every registry is a dead loopback port: a missing image fails at once, locally.
  cat > "$c/certs.d/_default/hosts.toml" <<'EOF'
server = "http://127.0.0.1:1"

[host."http://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
EOF
  cat > "$c/config.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
EOF
  # Bridge + host-local on the pod /24; not a gateway (no ip_forward, no default route), with
  # routes to the VPC and Service ranges through the node address.
  cat > "$STATE/cni/net.d/10-pvtapi.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "pvtapi",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "isDefaultGateway": false,
      "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "$POD_PREFIX.100", "rangeEnd": "$POD_PREFIX.250", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$VPC_CIDR", "gw": "$NODE_IP"}, {"dst": "$SERVICE_CIDR", "gw": "$NODE_IP"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
  log "containerd $(containerd --version | awk '{print $3}') (private mount namespace)"
  spawn containerd nsenter --mount="$MNTNS" -- containerd --config "$c/config.toml"
  wait_for "containerd" 30 containerd ctr -a "$c/containerd.sock" version
}

images() {
  local c="$STATE/containerd" img="$STATE/images"
  mkdir -p "$img"
  # The CRI sandbox ("pause") image and a helper for OOM tests: one small static Go program.
  if [[ ! -f "$CACHE/tools/pause/pause" || "$HERE/pause/main.go" -nt "$CACHE/tools/pause/pause" ]]; then
    mkdir -p "$CACHE/tools/pause"
    (cd "$HERE/pause" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w -buildid=' \
      -o "$CACHE/tools/pause/pause" .)
  fi
  python3 "$HERE/oci-image.py" --ref "$PAUSE_REF" --out "$img/pause.tar" --user 65535:65535 \
    --entrypoint /pause --file "$CACHE/tools/pause/pause:/pause" >/dev/null
  python3 "$HERE/oci-image.py" --ref "$HOG_REF" --out "$img/hog.tar" --user 65532:65532 \
    --entrypoint /pause --entrypoint-arg alloc --entrypoint-arg 64 --file "$CACHE/tools/pause/pause:/pause" >/dev/null
  python3 "$HERE/oci-image.py" --ref "$KUBECTL_REF" --out "$img/kubectl.tar" --user 65532:65532 \
    --entrypoint /kubectl --file "$BIN_K8S/kubectl:/kubectl" >/dev/null
  in_ns ctr -a "$c/containerd.sock" -n k8s.io images import "$img/pause.tar" >/dev/null
  in_ns ctr -a "$c/containerd.sock" -n k8s.io images import "$img/kubectl.tar" >/dev/null
  in_ns ctr -a "$c/containerd.sock" -n k8s.io images import "$img/hog.tar" >/dev/null
  pvtapi_image
}

pvtapi_image() {
  # The pvtapi image from the operator binary cargo already built (see tests/substrate/oci-image.py).
  local c="$STATE/containerd" img="$STATE/images" digest
  mkdir -p "$img"
  digest="$(python3 "$HERE/oci-image.py" --pvtapi "$OPERATOR_BIN" --ref "$IMAGE_REF" --out "$img/pvtapi.tar")"
  if [[ "$digest" != "$(cat "$img/pvtapi.imported" 2>/dev/null)" ]]; then
    in_ns ctr -a "$c/containerd.sock" -n k8s.io images import "$img/pvtapi.tar" >/dev/null
    echo "$digest" > "$img/pvtapi.imported"
    log "imported $IMAGE_REF ($digest, $(du -h "$img/pvtapi.tar" | cut -f1))"
  fi
  echo "$digest" > "$img/pvtapi.digest"
}

cgroup_root() {
  # The kubelet wants its cgroupRoot to exist in every v1 hierarchy (cpuset needs its cpus/mems).
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ "$h" == */unified/ ]] && continue
    mkdir -p "$h$CGROUP_ROOT"
    if [[ -f "${h}cpuset.cpus" ]]; then
      cat "${h}cpuset.cpus" > "$h$CGROUP_ROOT/cpuset.cpus"
      cat "${h}cpuset.mems" > "$h$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

kubelet_start() {
  local k
  cgroup_root
  for k in "${KUBELET_SYSCTLS[@]}"; do printf '%s = %s\n' "$k" "$(sysctl -n "$k")"; done > "$STATE/sysctl.before"
  cat > "$STATE/resolv.conf" <<EOF
nameserver $NODE_IP
EOF
  cat > "$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
oomScoreAdj: 0
failSwapOn: false
makeIPTablesUtilChains: false
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 16248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
podLogsDir: /var/log/pods
containerRuntimeEndpoint: unix://$STATE/containerd/containerd.sock
imageServiceEndpoint: unix://$STATE/containerd/containerd.sock
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 150
podPidsLimit: 4096
syncFrequency: 10s
staticPodPath: ""
EOF
  log "kubelet $K8S_VERSION as $NODE_NAME ($NODE_IP)"
  spawn kubelet nsenter --mount="$MNTNS" -- "$BIN_K8S/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir /var/lib/kubelet \
    --cert-dir /var/lib/kubelet/pki --v=1
}

network_policies() {
  echo "$NETWORK_POLICIES" > "$STATE/network-policies"
  [[ "$NETWORK_POLICIES" == enforced ]] || { log "NetworkPolicies are not enforced (PVTAPI_NETWORK_POLICIES=off)"; return 0; }
  # Its identity: v0.8.0 has no --kubeconfig flag, only in-cluster config — a bearer token and the
  # CA in /var/run/secrets/kubernetes.io/serviceaccount, the apiserver in KUBERNETES_SERVICE_HOST/
  # PORT. So it runs in the node's private mount namespace (its /run is a tmpfs that dies with it)
  # with a token of ServiceAccount kube-system/kube-network-policies, which may only list and watch
  # what it reads (pods, namespaces, networkpolicies; nodes only with the AdminNetworkPolicy flags).
  kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-network-policies, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "pvtapi:kube-network-policies"}
rules:
- {apiGroups: [""], resources: [pods, namespaces], verbs: [list, watch]}
- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "pvtapi:kube-network-policies"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "pvtapi:kube-network-policies"}
subjects: [{kind: ServiceAccount, name: kube-network-policies, namespace: kube-system}]
YAML
  local sa=/run/secrets/kubernetes.io/serviceaccount
  kubectl_admin create token kube-network-policies -n kube-system --duration 168h \
    | in_ns sh -euc "umask 077; mkdir -p $sa; cat > $sa/token"
  in_ns sh -euc "cat > $sa/ca.crt" < "$STATE/pki/ca.crt"
  log "kube-network-policies $KNP_VERSION (NFQUEUE $KNP_QUEUE, fail-open)"
  # --fail-open: it accepts what it cannot parse and asks the kernel to accept when its queue is
  # full. (Its nftables sync fails here, see the top; it logs that and serves the queue anyway.)
  spawn kube-network-policies env KUBERNETES_SERVICE_HOST="$NODE_IP" KUBERNETES_SERVICE_PORT="$APISERVER_PORT" \
    nsenter --mount="$MNTNS" -- "$BIN_KNP/kube-network-policies" \
    --hostname-override "$NODE_NAME" --fail-open --nfqueue-id "$KNP_QUEUE" \
    --metrics-bind-address "$KNP_METRICS" --v=2
  wait_for "kube-network-policies to bind NFQUEUE $KNP_QUEUE" 60 kube-network-policies knp_bound
  iptables -t mangle -N "$NETPOL_CHAIN"
  iptables -t mangle -A "$NETPOL_CHAIN" -m conntrack --ctstate NEW -j NFQUEUE --queue-num "$KNP_QUEUE" --queue-bypass
  iptables -t mangle -A INPUT -i "$BRIDGE" -j "$NETPOL_CHAIN"     # pod -> an address of the node
  iptables -t mangle -A FORWARD -i "$BRIDGE" -j "$NETPOL_CHAIN"   # pod -> pod (br_netfilter), pod -> routed
  iptables -t mangle -A FORWARD -o "$BRIDGE" -j "$NETPOL_CHAIN"   # routed -> pod
}

knp_bound() {  # its netlink socket listens on the queue (it binds once its informers have synced)
  awk -v q="$KNP_QUEUE" '$1 == q {found = 1} END {exit !found}' /proc/net/netfilter/nfnetlink_queue
}

node_ready() {
  [[ "$(kubectl_admin get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

start() {
  require
  if healthy; then
    if [[ "$(cat "$STATE/network-policies" 2>/dev/null)" == "$NETWORK_POLICIES" ]]; then
      log "already running ($NODE_NAME, apiserver $NODE_IP:$APISERVER_PORT)"
      images
      print_env
      return
    fi
    log "restarting: NetworkPolicies $NETWORK_POLICIES asked, the running cluster has $(cat "$STATE/network-policies" 2>/dev/null || echo 'no enforcer')"
  fi
  [[ -d "$STATE" ]] && { log "cleaning up a stopped or broken cluster in $STATE"; stop; }
  local t0=$SECONDS
  mkdir -p "$STATE"/{pid,log}
  pki
  kubeconfig admin admin
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  kubeconfig kube-proxy kube-proxy
  kubeconfig kubelet kubelet
  network
  dns
  control_plane
  kube_proxy
  mount_namespace
  containerd_start
  images
  kubelet_start
  wait_for "node $NODE_NAME Ready" "$READY_TIMEOUT" kubelet node_ready
  wait_for "ServiceAccount default/default" 60 kube-controller-manager kubectl_admin get serviceaccount default -n default
  wait_for "ConfigMap default/kube-root-ca.crt" 60 kube-controller-manager kubectl_admin get configmap kube-root-ca.crt -n default
  wait_for "the kubernetes Service's iptables rules" 30 kube-proxy bash -c "iptables -t nat -S KUBE-SERVICES | grep -q -- '-d $KUBERNETES_SVC_IP/32'"
  network_policies
  touch "$STATE/started"
  log "ready in $((SECONDS - t0)) s: node $NODE_NAME, apiserver https://$NODE_IP:$APISERVER_PORT, DNS $NODE_IP:53, state $STATE"
  print_env
}

status() {
  local p
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy containerd kubelet dnsmasq kube-network-policies; do
    if [[ "$p" == kube-network-policies && "$(cat "$STATE/network-policies" 2>/dev/null)" == off ]]; then echo "$p off"; continue; fi
    if kill -0 "$(cat "$STATE/pid/$p.pid" 2>/dev/null)" 2>/dev/null; then echo "$p running"; else echo "$p stopped"; fi
  done
  if iptables -t mangle -S "$NETPOL_CHAIN" >/dev/null 2>&1; then echo "$NETPOL_CHAIN queue hooks present"; fi
}

case "${1:-}" in
  start) start ;;
  env) healthy || die "no healthy cluster in $STATE: run '$0 start'"; print_env ;;
  image) healthy || die "no healthy cluster in $STATE: run '$0 start'"; pvtapi_image; print_env ;;
  status) status ;;
  restart-apiserver)
    # A fault for the operator suites: every watch and request in flight breaks, then the same
    # apiserver (same etcd, same certificates) comes back.
    healthy || die "no healthy cluster in $STATE: run '$0 start'"
    kill_pidfile kube-apiserver; apiserver; log "kube-apiserver restarted" ;;
  stop) stop ;;
  *) echo "usage: $0 start|env|image|status|restart-apiserver|stop" >&2; exit 2 ;;
esac
