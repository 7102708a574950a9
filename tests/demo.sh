#!/usr/bin/env bash
# pvtapi in one command, on this machine, offline. The demo:
#   - installs the peers (tests/substrate/install.sh) and builds what is missing;
#   - starts the local one-node Kubernetes cluster;
#   - installs the Helm chart and applies five checks, each meeting a different world: one
#     healthy, one with a missing stage, one through an endpoint whose security group lacks 443,
#     one whose resource policy denies every other endpoint, one whose policy lacks ours;
#   - prints `kubectl get pac -A`, `kubectl pvtapi list -A` and `kubectl pvtapi check NAME` for each;
#   - cleans up and stops the cluster, then prints what to do next on EKS.
# moto plays AWS and dnsmasq plays the VPC resolver; a TLS listener on an endpoint address plays API
# Gateway. Nothing leaves the machine. About 1.5 minutes once built. The first run builds
# Kubernetes and the workspace from source, which takes longer (README).
#
#   sudo bash tests/demo.sh                 # the demo (progress on stderr, results on stdout)
#   sudo bash tests/demo.sh --keep-cluster  # leave the cluster running (stop: bash tests/substrate/cluster.sh stop)
#   sudo bash tests/demo.sh --local         # no cluster: every tests/scenarios/ file through `kubectl pvtapi check --local`
#
# Exit 0 when every check named the root cause its world was built for, 1 when one did not, 2 on
# a setup error, 130 when interrupted. It cleans up on every path, Ctrl-C included.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PVTAPI_CACHE="${PVTAPI_CACHE:-$HOME/.cache/pvtapi}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PVTAPI_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
T0=$SECONDS
say() { printf '[demo.sh %s +%ss] %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - T0))" "$*" >&2; }
# Timestamps every line of a step's output (install, cargo, cluster start) on stderr.
stamp() { while IFS= read -r line; do printf '[%s +%ss]   %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - T0))" "$line"; done >&2; }

keep_cluster=0
case "${1:-}" in
  --local)
    # The article's failures as `kubectl pvtapi check --local` shows them, on local real peers
    # (moto_server, dnsmasq, a TLS listener, a network-namespace blackhole).
    for tool in moto_server dnsmasq ip; do
      command -v "$tool" >/dev/null || { echo "demo: $tool is missing: run bash tests/substrate/install.sh" >&2; exit 2; }
    done
    [ "$(id -u)" = 0 ] || { echo "demo: needs root for network namespaces (sudo bash tests/demo.sh --local)" >&2; exit 2; }
    echo "building and running $(ls tests/scenarios/*.yaml | wc -l) scenarios (first build takes minutes)…" >&2
    PVTAPI_SHOW_REPORTS=1 cargo test -q -p kubectl-pvtapi --test scenarios -- --nocapture 2>&1 \
      | grep -v -E '^(running [0-9]+ tests?|test result:.*|\.+)$' || true
    exit 0 ;;
  --keep-cluster) keep_cluster=1 ;;
  "") ;;
  *) echo "usage: $0 [--keep-cluster | --local]" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { say "the local cluster needs root (bridges, mount namespaces, cgroups): sudo bash tests/demo.sh"; exit 2; }

say "1/4 installing peers (Debian packages, moto, Kubernetes and helm built from source the first time)"
bash tests/substrate/install.sh 2>&1 | stamp

say "2/4 building the operator (the image), the plugin and the demo (cargo; incremental when warm)"
# One cargo invocation: the three binaries share one build of their dependencies.
cargo build --locked -p pvtapi-operator --bin pvtapi-operator -p kubectl-pvtapi --bin kubectl-pvtapi \
  -p pvtapi-e2e --bin demo 2>&1 | stamp

started_here=0
if bash tests/substrate/cluster.sh env >/dev/null 2>&1; then
  say "3/4 a local cluster is already running: using it (and leaving it running)"
else
  started_here=1
fi
stop_cluster() {
  if ((started_here && !keep_cluster)); then
    say "stopping the local cluster"
    bash tests/substrate/cluster.sh stop 2>&1 | stamp || true
  fi
}
trap stop_cluster EXIT
((started_here)) && say "3/4 starting the local cluster (etcd, apiserver, scheduler, controller-manager, kube-proxy, containerd, kubelet, dnsmasq)"
# Not through `stamp`: the cluster's daemons would inherit the pipe and keep it open.
cluster_env="$(bash tests/substrate/cluster.sh start)"
eval "$cluster_env"
say "the cluster is up"

say "4/4 the demo (tests/src/bin/demo.rs)"
rc=0
"$CARGO_TARGET_DIR/debug/demo" || rc=$?
trap - EXIT
stop_cluster
((keep_cluster && started_here)) && say "the cluster is still running: eval \"\$(bash tests/substrate/cluster.sh env)\"; stop it with bash tests/substrate/cluster.sh stop"
say "done in $((SECONDS - T0)) s (exit $rc)"
((rc == 0)) || exit "$rc"

cat <<'EOF'

Next, on a real EKS cluster:

  1. An IAM role the operator assumes, with the read-only policy in deploy/iam-policy.json:
       aws iam create-policy --policy-name pvtapi-reader --policy-document file://deploy/iam-policy.json
       eksctl create iamserviceaccount --cluster CLUSTER --namespace pvtapi-system --name pvtapi \
         --role-name pvtapi-reader --role-only --approve \
         --attach-policy-arn arn:aws:iam::ACCOUNT:policy/pvtapi-reader
     (EKS Pod Identity instead: aws eks create-pod-identity-association --cluster-name CLUSTER \
        --namespace pvtapi-system --service-account pvtapi --role-arn arn:aws:iam::ACCOUNT:role/pvtapi-reader)

  2. The chart, with that role on its ServiceAccount (every value: docs/chart.md):
       helm install pvtapi charts/pvtapi -n pvtapi-system --create-namespace \
         --set serviceAccount.annotations."eks\.amazonaws\.com/role-arn"=arn:aws:iam::ACCOUNT:role/pvtapi-reader
     The image is built from Dockerfile (docs/release.md); set image.repository/tag to your registry's copy.

  3. The plugin on your PATH: cargo install --locked --path plugin  (or krew: docs/release.md)

  4. Checks for the private APIs your workloads call:
       kubectl pvtapi discover -A                           # execute-api hostnames in pod env and ConfigMaps
       kubectl pvtapi discover -n payments -o yaml > checks.yaml   # review, commit, kubectl apply -f checks.yaml
     or a first one by hand: crds/samples/privateapiconnectivitycheck.yaml (your API id, stage, path, vpce id)

  5. Read them as the demo did:
       kubectl get pac -A
       kubectl pvtapi list -A
       kubectl pvtapi check NAME -n NAMESPACE [--rerun]
EOF
