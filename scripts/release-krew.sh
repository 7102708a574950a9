#!/usr/bin/env bash
# Package kubectl-pvtapi for krew: reproducible archives + the rendered krew manifest.
#
#   scripts/release-krew.sh VERSION DIST_DIR [BASE_URL]
#
# VERSION   X.Y.Z or vX.Y.Z, optionally with a pre-release (-rc.1); the tag is always vX.Y.Z[-pre].
# DIST_DIR  holds one binary per platform, named kubectl-pvtapi-<os>-<arch>:
#             kubectl-pvtapi-linux-amd64  kubectl-pvtapi-linux-arm64
#             kubectl-pvtapi-darwin-amd64 kubectl-pvtapi-darwin-arm64
# BASE_URL  where the archives will be downloadable from;
#           default https://github.com/pvtapi/pvtapi/releases/download/<tag>
#
# Writes into DIST_DIR:
#   kubectl-pvtapi-<tag>-<os>-<arch>.tar.gz   kubectl-pvtapi (0755) + LICENSE (0644), byte-reproducible
#   SHA256SUMS                                sha256sum format, one line per archive
#   pvtapi.yaml                               plugins/pvtapi.yaml with every placeholder filled in
# Re-running with the same inputs rewrites the same bytes. The LICENSE is the repo root's LICENSE
# (krew-index's validate-krew-manifest fails an archive without one).
#
# Exit 0 done; 2 refused (bad arguments, bad version, missing DIST_DIR / binary / LICENSE / tool);
# 1 anything else.
set -euo pipefail

PLATFORMS=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
BIN=kubectl-pvtapi
DEFAULT_BASE=https://github.com/pvtapi/pvtapi/releases/download
VERSION_RE='^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$'
URL_RE='^https?://[^[:space:]"\\]+$'

refuse() { printf 'release-krew: %s\n' "$*" >&2; exit 2; }
fail() { printf 'release-krew: error: %s\n' "$*" >&2; exit 1; }
usage() { refuse "usage: $0 VERSION DIST_DIR [BASE_URL]  (e.g. $0 v0.1.0 dist)"; }

[[ $# -eq 2 || $# -eq 3 ]] || usage

# Same results whatever the caller's environment says.
export LC_ALL=C TZ=UTC
unset GZIP TAR_OPTIONS

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$script_dir/.." && pwd)
template="$repo_root/plugins/pvtapi.yaml"
license="$repo_root/LICENSE"

# --- version -------------------------------------------------------------------------------------
raw_version=$1
[[ $raw_version =~ $VERSION_RE ]] ||
    refuse "invalid version '$raw_version': must match $VERSION_RE (e.g. v0.1.0, 0.2.0-rc.1)"
version="v${raw_version#v}"
# krew parses spec.version as strict semver (k8s.io/apimachinery ParseSemantic): no zero-prefixed
# number, no empty pre-release identifier. Refuse here rather than hand krew-index a bad manifest.
core=${version#v}; core=${core%%-*}
IFS=. read -r -a nums <<<"$core"
for n in "${nums[@]}"; do
    [[ $n == 0 || $n != 0* ]] || refuse "invalid version '$raw_version': zero-prefixed number '$n' (not semver)"
done
if [[ $version == *-* ]]; then
    pre=${version#*-}
    [[ $pre != .* && $pre != *. && $pre != *..* ]] ||
        refuse "invalid version '$raw_version': empty pre-release identifier (not semver)"
    IFS=. read -r -a ids <<<"$pre"
    for id in "${ids[@]}"; do
        [[ ! $id =~ ^0[0-9]+$ ]] ||
            refuse "invalid version '$raw_version': zero-prefixed pre-release number '$id' (not semver)"
    done
fi

# --- DIST_DIR, BASE_URL --------------------------------------------------------------------------
[[ -d $2 ]] || refuse "DIST_DIR '$2' does not exist (or is not a directory)"
dist=$(cd -- "$2" && pwd)

base_url=${3:-$DEFAULT_BASE/$version}
while [[ $base_url == */ ]]; do base_url=${base_url%/}; done
[[ $base_url =~ $URL_RE ]] ||
    refuse "invalid BASE_URL '${3:-}': must be an http(s) URL without spaces, quotes or backslashes"

# --- inputs and tools ----------------------------------------------------------------------------
[[ -f $template ]] || fail "template $template not found"
[[ -f $license ]] ||
    refuse "no LICENSE file at $license: krew-index requires one in every archive (add the project's license text there)"

missing=()
for p in "${PLATFORMS[@]}"; do
    f="$dist/$BIN-${p%/*}-${p#*/}"
    [[ -f $f && -s $f ]] || missing+=("$p ($f)")
done
if ((${#missing[@]})); then
    for m in "${missing[@]}"; do printf 'release-krew: missing binary for %s\n' "$m" >&2; done
    refuse "${#missing[@]} platform binary(ies) missing in $dist; nothing written"
fi

TAR=${TAR:-tar}
"$TAR" --version 2>/dev/null | grep -q 'GNU tar' ||
    refuse "GNU tar is required (--sort=name); set TAR=gtar on macOS"
command -v gzip >/dev/null || refuse "gzip not found"
if command -v sha256sum >/dev/null; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    refuse "sha256sum (or shasum) not found"
fi

# Literal {{KEY}} -> value replacement (no regex or '&' surprises in values).
render() { # render TEMPLATE KEY=VALUE...
    local tpl=$1; shift
    awk '
        BEGIN {
            for (i = 1; i < ARGC; i++) { k = substr(ARGV[i], 1, index(ARGV[i], "=") - 1); v = substr(ARGV[i], length(k) + 2); val["{{" k "}}"] = v }
            ARGC = 1
        }
        /^#/ { next }
        {
            out = ""; line = $0
            while ((s = index(line, "{{")) > 0) {
                e = index(substr(line, s), "}}")
                if (e == 0) break
                key = substr(line, s, e + 1)
                if (!(key in val)) { printf "release-krew: error: unknown placeholder %s in template\n", key > "/dev/stderr"; bad = 1; exit 1 }
                out = out substr(line, 1, s - 1) val[key]; line = substr(line, s + e + 1)
            }
            print out line
        }
        END { if (bad) exit 1 }
    ' "$@" <"$tpl"
}

# --- archives ------------------------------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/release-krew.XXXXXX")
trap 'rm -rf -- "$stage"' EXIT

vars=("VERSION=$version")
sums=""
for p in "${PLATFORMS[@]}"; do
    os=${p%/*} arch=${p#*/}
    key=$(printf '%s_%s' "$os" "$arch" | tr '[:lower:]' '[:upper:]')
    name="$BIN-$version-$os-$arch.tar.gz"

    rm -rf -- "$stage/root"; mkdir "$stage/root"
    cp -- "$dist/$BIN-$os-$arch" "$stage/root/$BIN"
    cp -- "$license" "$stage/root/LICENSE"
    chmod 0755 "$stage/root/$BIN"
    chmod 0644 "$stage/root/LICENSE"

    "$TAR" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar \
        -C "$stage/root" -cf - LICENSE "$BIN" | gzip -n -9 >"$stage/$name"
    mv -f -- "$stage/$name" "$dist/$name"

    sum=$(sha256 "$dist/$name")
    vars+=("URI_$key=$base_url/$name" "SHA256_$key=$sum")
    sums+="$sum  $name"$'\n'
    printf '%s  %s\n' "$sum" "$name"
done

printf '%s' "$sums" >"$stage/SHA256SUMS"
mv -f -- "$stage/SHA256SUMS" "$dist/SHA256SUMS"

render "$template" "${vars[@]}" >"$stage/pvtapi.yaml" || fail "rendering $template failed"
if grep -n '{{' "$stage/pvtapi.yaml" >&2; then fail "placeholders left unrendered (above)"; fi
mv -f -- "$stage/pvtapi.yaml" "$dist/pvtapi.yaml"

printf 'release-krew: %s: %d archives, SHA256SUMS and pvtapi.yaml in %s (archives at %s/)\n' \
    "$version" "${#PLATFORMS[@]}" "$dist" "$base_url"
