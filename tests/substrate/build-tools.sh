#!/usr/bin/env bash
# Builds the real cluster binaries the end-to-end tests run against, from the upstream Go
# modules served by the Go module proxy, into a versioned cache directory outside the clone:
# etcd, Kubernetes, helm, and kube-network-policies (the local node's NetworkPolicy enforcer).
# Each binary is built once per machine; a second run is a no-op. Idempotent and safe to re-run.
#
#   tests/substrate/build-tools.sh            # build whatever is missing
#   PVTAPI_CACHE=/somewhere tests/substrate/build-tools.sh
#
# Why a wrapper module: k8s.io/kubernetes cannot be `go install`ed, because its go.mod points every
# k8s.io/<staging> module at ./staging with `replace` lines. A tiny module that requires it and
# pins each staging module to the matching v0.X.Y tag builds the same binaries.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
KNP_VERSION="${KNP_VERSION:-v0.8.0}"
CACHE="${PVTAPI_CACHE:-$HOME/.cache/pvtapi}"
TOOLS="$CACHE/tools"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export CGO_ENABLED=0
export GOTOOLCHAIN=local

log() { printf '[build-tools] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "ERROR: 'go' not found; install Go >= 1.25 (https://go.dev/doc/install)"; exit 1; }

# Every binary of the local cluster comes from one wrapper module (one `go mod` resolution, one
# shared build cache): the control plane the API tests use and the node the pods run on.
K8S_CMDS=(kube-apiserver kubectl kube-scheduler kube-controller-manager kubelet kube-proxy)

build_k8s() {
  local out="$TOOLS/k8s-$K8S_VERSION"
  local missing=() c
  for c in "${K8S_CMDS[@]}"; do [[ -x "$out/$c" ]] || missing+=("$c"); done
  if ((${#missing[@]} == 0)); then
    log "${K8S_CMDS[*]} $K8S_VERSION already built in $out"; return
  fi
  local minor="${K8S_VERSION#v1.}"           # 36.3
  local staging="v0.$minor"                  # v0.36.3
  local work="$CACHE/build/k8s-$K8S_VERSION"
  mkdir -p "$work" "$out"
  log "building ${missing[*]} $K8S_VERSION (staging $staging) in $work — first time takes 20-30 min"
  cat > "$work/go.mod" <<GOMOD
module pvtapi.local/k8s-tools

go 1.25

require k8s.io/kubernetes $K8S_VERSION
GOMOD
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${K8S_CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > "$work/tools.go"
  # Find every staging module k8s.io/kubernetes replaces and pin it to the tag of this release.
  local modfile
  modfile="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$modfile" ]] || { log "ERROR: could not download k8s.io/kubernetes@$K8S_VERSION go.mod (Go module proxy reachable?)"; exit 1; }
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" | awk '{print $1}' | sort -u | while read -r m; do
    printf 'replace %s => %s %s\n' "$m" "$m" "$staging" >> "$work/go.mod"
  done
  (cd "$work" && go mod tidy -e >/dev/null 2>&1 || true)
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  for c in "${missing[@]}"; do
    local t0=$SECONDS
    (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$out/$c.tmp" "$out/$c"
    log "built $out/$c ($((SECONDS - t0)) s)"
  done
}

build_etcd() {
  local out="$TOOLS/etcd-$ETCD_VERSION"
  if [[ -x "$out/etcd" ]]; then log "etcd $ETCD_VERSION already built in $out"; return; fi
  local work="$CACHE/build/etcd-$ETCD_VERSION"
  mkdir -p "$work" "$out"
  log "building etcd $ETCD_VERSION in $work"
  cat > "$work/go.mod" <<GOMOD
module pvtapi.local/etcd-tools

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$work" && go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$out/etcd.tmp" "$out/etcd"
  log "built $out/etcd"
}

build_helm() {
  local out="$TOOLS/helm-$HELM_VERSION"
  if [[ -x "$out/helm" ]]; then log "helm $HELM_VERSION already built in $out"; return; fi
  mkdir -p "$out"
  log "building helm $HELM_VERSION"
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  log "built $out/helm"
}

build_knp() {
  # sigs.k8s.io/kube-network-policies: NetworkPolicy enforcement for the local node (nftables
  # through netlink + NFQUEUE; cluster.sh starts it). In v0.8.0 the main package is .../cmd, so
  # `go install` names the binary "cmd": it is installed into a scratch GOBIN and renamed.
  local out="$TOOLS/kube-network-policies-$KNP_VERSION"
  if [[ -x "$out/kube-network-policies" ]]; then log "kube-network-policies $KNP_VERSION already built in $out"; return; fi
  local gobin="$CACHE/build/kube-network-policies-$KNP_VERSION"
  rm -rf "$gobin"; mkdir -p "$gobin" "$out"
  log "building kube-network-policies $KNP_VERSION"
  GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kube-network-policies/cmd@$KNP_VERSION"
  mv "$gobin/cmd" "$out/kube-network-policies"
  rm -rf "$gobin"
  log "built $out/kube-network-policies"
}

want="${*:-etcd k8s helm knp}"
for t in $want; do "build_$t"; done
