#!/usr/bin/env bash
# Pod start on the local node: create → Succeeded, as a client sees it, for N pods run one
# after another (default 10): the pvtapi image running `--version` in the restricted shape the
# probe pods have. (A probe run against a bare pod is the operator's benchmark.)
# Needs a running cluster: eval "$(bash tests/substrate/cluster.sh start)".
#
#   bash tests/bench/pod-start.sh [N]
set -euo pipefail
N="${1:-10}"
: "${PVTAPI_KUBECONFIG:?start the cluster first: eval \"\$(bash tests/substrate/cluster.sh start)\"}"
K=("$PVTAPI_KUBE_BIN/kubectl" --kubeconfig "$PVTAPI_KUBECONFIG")
NS="bench-$$"
"${K[@]}" create namespace "$NS" >/dev/null
trap '"${K[@]}" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true' EXIT
until "${K[@]}" -n "$NS" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done

one() {  # one NAME IMAGE ARGS_JSON → milliseconds from create to Succeeded
  local t0 t1
  t0=$(date +%s%N)
  "${K[@]}" -n "$NS" create -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: $2
    imagePullPolicy: Never
    args: $3
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
  "${K[@]}" -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$1" --timeout=120s >/dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}

stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms, p95 %d ms, min %d ms, max %d ms (n=%d)\n", a[int((NR+1)/2)], a[int(NR*0.95+0.999)], a[1], a[NR], NR}'; }

pv=()
for i in $(seq 1 "$N"); do pv+=("$(one "pvtapi-$i" "$PVTAPI_IMAGE" '["--version"]')"); done
printf 'pvtapi image (--version): '; printf '%s\n' "${pv[@]}" | stats
