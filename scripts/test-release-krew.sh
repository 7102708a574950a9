#!/usr/bin/env bash
# Tests scripts/release-krew.sh and plugins/pvtapi.yaml end to end, with krew's own tools:
#   - fake kubectl-pvtapi binaries (shell scripts) for every platform, in a temp dir;
#   - release-krew.sh twice: archives, SHA256SUMS and pvtapi.yaml byte-identical; archive layout,
#     owners, modes, mtimes and gzip header checked; manifest sha256s equal the archives';
#   - validate-krew-manifest (krew v0.4.3, the krew-index CI check) on the rendered manifest, with
#     the install step: the archives are served from 127.0.0.1 and `kubectl krew install` downloads,
#     verifies and extracts them for each platform (and finds the LICENSE);
#   - the validator refuses a manifest with a wrong sha256;
#   - a real `kubectl krew install --manifest` and `kubectl pvtapi` through kubectl's plugin lookup;
#   - each refusal of release-krew.sh exits 2 with its message.
# Installs validate-krew-manifest and krew (go install ...@v0.4.3) into
# ~/.cache/pvtapi/tools/krew-v0.4.3 when missing (override: PVTAPI_KREW_TOOLS). Needs go, python3
# (the loopback file server), GNU tar, gzip, sha256sum. kubectl is optional (a shim stands in).
# Ends with "N passed, M failed"; exit 0 only when nothing failed.
set -euo pipefail

KREW_VERSION=v0.4.3
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/.." && pwd)
TOOLS=${PVTAPI_KREW_TOOLS:-$HOME/.cache/pvtapi/tools/krew-$KREW_VERSION}
PLATFORMS=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
VERSION=v0.1.0

trap 'echo "FATAL: unexpected failure at line $LINENO: $BASH_COMMAND" >&2' ERR

passed=0 failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check DESCRIPTION CMD...
    local d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
fatal() { printf 'FATAL: %s\n' "$*" >&2; exit 1; }

for t in python3 gzip sha256sum cmp od; do command -v "$t" >/dev/null || fatal "$t not found"; done
tar --version 2>/dev/null | grep -q 'GNU tar' || fatal "GNU tar is required"

# --- tools ---------------------------------------------------------------------------------------
ensure_tool() { # ensure_tool BINARY PACKAGE
    [[ -x $TOOLS/$1 ]] && return 0
    command -v go >/dev/null || fatal "go not found: needed to install $2@$KREW_VERSION"
    echo "installing $2@$KREW_VERSION into $TOOLS ($(go version))"
    mkdir -p "$TOOLS"
    GOBIN=$TOOLS GOTOOLCHAIN=local GOFLAGS=-mod=mod nice -n 10 go install "$2@$KREW_VERSION" ||
        fatal "go install $2@$KREW_VERSION failed"
    [[ -x $TOOLS/$1 ]] || fatal "$TOOLS/$1 missing after go install"
}
ensure_tool validate-krew-manifest sigs.k8s.io/krew/cmd/validate-krew-manifest
ensure_tool krew sigs.k8s.io/krew/cmd/krew
VALIDATE=$TOOLS/validate-krew-manifest

# --- temp tree -----------------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-release-krew.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf -- "$tmp"
}
trap cleanup EXIT

# A copy of the repo parts release-krew.sh uses; the LICENSE is the repo's when it has one.
mkdir -p "$tmp/repo/scripts" "$tmp/repo/plugins" "$tmp/bin"
cp "$repo/scripts/release-krew.sh" "$tmp/repo/scripts/"
cp "$repo/plugins/pvtapi.yaml" "$tmp/repo/plugins/"
if [[ -f $repo/LICENSE ]]; then
    cp "$repo/LICENSE" "$tmp/repo/LICENSE"
else
    echo "NOTE: $repo/LICENSE does not exist: a stand-in LICENSE is used here, and a real release is refused until it exists"
    echo "stand-in license text for test-release-krew.sh" >"$tmp/repo/LICENSE"
fi
RELEASE=$tmp/repo/scripts/release-krew.sh

# kubectl finds `kubectl krew` as kubectl-krew on PATH; without kubectl a shim does that lookup.
ln -s "$TOOLS/krew" "$tmp/bin/kubectl-krew"
if ! command -v kubectl >/dev/null; then
    echo "NOTE: no kubectl on PATH: a shim runs kubectl-<plugin> instead"
    # shellcheck disable=SC2016 # expanded by the shim, not here
    printf '#!/bin/sh\nname=$1; shift; exec "kubectl-$name" "$@"\n' >"$tmp/bin/kubectl"
    chmod +x "$tmp/bin/kubectl"
fi
export PATH="$tmp/bin:$PATH" KREW_NO_UPGRADE_CHECK=1

make_dist() { # make_dist DIR: one fake executable per platform
    mkdir -p "$1"
    for p in "${PLATFORMS[@]}"; do
        f="$1/kubectl-pvtapi-${p%/*}-${p#*/}"
        printf '#!/bin/sh\necho "fake kubectl-pvtapi %s $*"\n' "$p" >"$f"
        chmod 0700 "$f"   # release-krew.sh must set 0755 itself
    done
}

# run_release LOG ARGS...: sets rc
run_release() { local log=$1; shift; rc=0; "$RELEASE" "$@" >"$log" 2>&1 || rc=$?; }

# --- template ------------------------------------------------------------------------------------
short=$(sed -n 's/^  shortDescription: //p' "$repo/plugins/pvtapi.yaml")
check "template: shortDescription '$short' is ${#short} chars (<= 50, krew-index rule)" \
    test -n "$short" -a "${#short}" -le 50

# --- render twice: byte-identical ----------------------------------------------------------------
dist=$tmp/dist
make_dist "$dist"

# Serve DIST over loopback so the validator's `kubectl krew install` downloads the real archives.
python3 -u -m http.server --bind 127.0.0.1 --directory "$dist" 0 >"$tmp/http.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^Serving HTTP on 127\.0\.0\.1 port \([0-9]*\).*/\1/p' "$tmp/http.log")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/http.log"; fatal "the loopback file server died"; }
    sleep 0.1
done
[[ -n $port ]] || fatal "the loopback file server did not start (log: $(cat "$tmp/http.log"))"
BASE=http://127.0.0.1:$port

outputs=(SHA256SUMS pvtapi.yaml)
for p in "${PLATFORMS[@]}"; do outputs+=("kubectl-pvtapi-$VERSION-${p%/*}-${p#*/}.tar.gz"); done

run_release "$tmp/run1.log" "$VERSION" "$dist" "$BASE"
check "run 1: exit 0" test "$rc" = 0
[[ $rc == 0 ]] || { cat "$tmp/run1.log"; fatal "release-krew.sh failed; nothing else can be checked"; }
mkdir "$tmp/run1"
for f in "${outputs[@]}"; do cp "$dist/$f" "$tmp/run1/$f"; done

run_release "$tmp/run2.log" "$VERSION" "$dist" "$BASE"
check "run 2: exit 0" test "$rc" = 0
for f in "${outputs[@]}"; do
    check "run 2: $f byte-identical to run 1" cmp -s "$tmp/run1/$f" "$dist/$f"
done

# Default BASE_URL, version without "v", another DIST_DIR: same archives.
dist_gh=$tmp/dist-gh
make_dist "$dist_gh"
run_release "$tmp/run-gh.log" "${VERSION#v}" "$dist_gh"
check "default BASE_URL, version '${VERSION#v}': exit 0" test "$rc" = 0
for f in "${outputs[@]}"; do
    [[ $f == *.tar.gz ]] || continue
    check "other DIST_DIR: $f byte-identical" cmp -s "$dist/$f" "$dist_gh/$f"
done
check "default BASE_URL: version rendered as $VERSION" grep -qx "  version: \"$VERSION\"" "$dist_gh/pvtapi.yaml"

# --- archives ------------------------------------------------------------------------------------
expected_listing=$(printf '%s\n' \
    '-rw-r--r-- 0/0 LICENSE 1970-01-01 00:00' \
    '-rwxr-xr-x 0/0 kubectl-pvtapi 1970-01-01 00:00')
for p in "${PLATFORMS[@]}"; do
    name="kubectl-pvtapi-$VERSION-${p%/*}-${p#*/}.tar.gz"
    a="$dist/$name"
    listing=$(TZ=UTC tar --numeric-owner -tvzf "$a" | awk '{print $1, $2, $6, $4, $5}')
    check "$name: exactly LICENSE (0644) + kubectl-pvtapi (0755), owner 0/0, mtime 0" \
        test "$listing" = "$expected_listing"
    # gzip header: bytes 3..7 = flags (no FNAME) + mtime 0 (gzip -n)
    check "$name: gzip header has no name and mtime 0" \
        test "$(od -An -tx1 -j3 -N5 "$a" | tr -d ' \n')" = 0000000000
    mkdir -p "$tmp/x/$p"
    tar -xzf "$a" -C "$tmp/x/$p"
    check "$name: kubectl-pvtapi is the $p input" cmp -s "$tmp/x/$p/kubectl-pvtapi" "$dist/kubectl-pvtapi-${p%/*}-${p#*/}"
    check "$name: LICENSE is the repo's" cmp -s "$tmp/x/$p/LICENSE" "$tmp/repo/LICENSE"
    sum=$(sha256sum "$a" | cut -d' ' -f1)
    check "manifest: $p uri is BASE_URL/$name" \
        grep -qxF "      uri: \"$BASE/$name\"" "$dist/pvtapi.yaml"
    check "manifest: $p sha256 (after its uri) is the archive's" \
        test "$(grep -A1 -F "$BASE/$name" "$dist/pvtapi.yaml" | sed -n 's/^      sha256: "\(.*\)"$/\1/p')" = "$sum"
    check "default BASE_URL: $p uri is the GitHub release's" \
        grep -qxF "      uri: \"https://github.com/pvtapi/pvtapi/releases/download/$VERSION/$name\"" "$dist_gh/pvtapi.yaml"
done
check "SHA256SUMS verifies" bash -c "cd '$dist' && sha256sum --quiet -c SHA256SUMS"
check "manifest: no placeholder or template comment left" bash -c "! grep -nE '\\{\\{|^#' '$dist/pvtapi.yaml'"

# --- krew's validator ----------------------------------------------------------------------------
vrc=0
"$VALIDATE" -manifest "$dist_gh/pvtapi.yaml" -skip-install >"$tmp/validate-gh.log" 2>&1 || vrc=$?
check "validate-krew-manifest -skip-install (GitHub URLs): exit 0" test "$vrc" = 0
[[ $vrc == 0 ]] || cat "$tmp/validate-gh.log"

vrc=0
"$VALIDATE" -manifest "$dist/pvtapi.yaml" >"$tmp/validate.log" 2>&1 || vrc=$?
check "validate-krew-manifest with install of all 4 platforms from $BASE: exit 0" test "$vrc" = 0
check "validate-krew-manifest: 'all 4 spec.platforms installed fine'" \
    grep -q 'all 4 spec.platforms installed fine' "$tmp/validate.log"
if [[ $vrc == 0 ]]; then sed 's/^/    | /' "$tmp/validate.log"; else cat "$tmp/validate.log"; fi

# The validator has teeth: a wrong sha256 fails the install step.
mkdir "$tmp/wrong-sha"
awk 'done != 1 && /^      sha256: / { print "      sha256: \"" sprintf("%064d", 0) "\""; done = 1; next } { print }' \
    "$dist/pvtapi.yaml" >"$tmp/wrong-sha/pvtapi.yaml"
vrc=0
"$VALIDATE" -manifest "$tmp/wrong-sha/pvtapi.yaml" >"$tmp/validate-wrong.log" 2>&1 || vrc=$?
check "validate-krew-manifest refuses a wrong sha256 (exit $vrc)" test "$vrc" != 0
check "validate-krew-manifest names the checksum mismatch" grep -qi 'checksum' "$tmp/validate-wrong.log"

# A real install, then kubectl's plugin lookup runs it.
irc=0
KREW_ROOT=$tmp/krew-root KREW_OS=linux KREW_ARCH=amd64 \
    kubectl krew install --manifest "$dist/pvtapi.yaml" >"$tmp/install.log" 2>&1 || irc=$?
check "kubectl krew install --manifest: exit 0" test "$irc" = 0
[[ $irc == 0 ]] || cat "$tmp/install.log"
out=$(PATH="$tmp/krew-root/bin:$PATH" kubectl pvtapi version 2>&1 || true)
check "kubectl pvtapi runs the installed linux/amd64 binary ('$out')" test "$out" = "fake kubectl-pvtapi linux/amd64 version"
check "installed plugin has its LICENSE" test -f "$tmp/krew-root/store/pvtapi/$VERSION/LICENSE"

# --- refusals: exit 2 + message ------------------------------------------------------------------
refused() { # refused DESCRIPTION EXPECTED_MESSAGE ARGS...
    local d=$1 msg=$2; shift 2
    run_release "$tmp/refuse.log" "$@"
    if [[ $rc == 2 ]] && grep -qF -- "$msg" "$tmp/refuse.log"; then
        ok "refuses $d: exit 2, '$(head -n1 "$tmp/refuse.log")'"
    else
        bad "refuses $d: expected exit 2 and '$msg', got exit $rc: $(cat "$tmp/refuse.log")"
    fi
}
refused "version 1.2" "invalid version '1.2': must match" 1.2 "$dist"
refused "version v1.2.3_beta" "invalid version 'v1.2.3_beta': must match" v1.2.3_beta "$dist"
refused "version v1.2.3-" "invalid version 'v1.2.3-': must match" v1.2.3- "$dist"
refused "version v01.2.3 (krew's semver)" "zero-prefixed number '01'" v01.2.3 "$dist"
refused "version v1.2.3-rc..1 (krew's semver)" "empty pre-release identifier" v1.2.3-rc..1 "$dist"
refused "a missing DIST_DIR" "DIST_DIR '$tmp/nope' does not exist" "$VERSION" "$tmp/nope"
refused "a bad BASE_URL" "invalid BASE_URL 'ftp://x'" "$VERSION" "$dist" ftp://x
refused "one argument" "usage:" "$VERSION"

dist_missing=$tmp/dist-missing
make_dist "$dist_missing"
rm "$dist_missing/kubectl-pvtapi-linux-arm64" "$dist_missing/kubectl-pvtapi-darwin-amd64"
refused "a missing linux/arm64 binary" "missing binary for linux/arm64 ($dist_missing/kubectl-pvtapi-linux-arm64)" \
    "$VERSION" "$dist_missing"
check "missing binaries: darwin/amd64 named too" grep -qF "missing binary for darwin/amd64" "$tmp/refuse.log"
check "missing binaries: nothing written" \
    test -z "$(find "$dist_missing" -name '*.tar.gz' -o -name pvtapi.yaml -o -name SHA256SUMS)"

rm "$tmp/repo/LICENSE"
refused "a missing LICENSE" "no LICENSE file at $tmp/repo/LICENSE" "$VERSION" "$dist"

# A pre-release renders too (krew parses it).
dist_rc=$tmp/dist-rc
make_dist "$dist_rc"
echo "stand-in" >"$tmp/repo/LICENSE"
run_release "$tmp/run-rc.log" 0.2.0-rc.1 "$dist_rc"
check "pre-release 0.2.0-rc.1: exit 0" test "$rc" = 0
vrc=0
"$VALIDATE" -manifest "$dist_rc/pvtapi.yaml" -skip-install >"$tmp/validate-rc.log" 2>&1 || vrc=$?
check "pre-release v0.2.0-rc.1: validate-krew-manifest -skip-install exit 0" test "$vrc" = 0

echo
echo "$passed passed, $failed failed"
((failed == 0))
