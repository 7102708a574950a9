#!/usr/bin/env python3
"""Builds a one-layer OCI image layout tarball without a daemon or registry, reproducibly.

Why: the local cluster has no registry and no Docker engine, yet pods must run pvtapi from an
image. An image is only a few files: a layer tar, a config and a manifest (OCI image spec), so
this script writes them with fixed timestamps, owners and ordering: the same inputs give the same
digest, byte for byte. `ctr images import` loads the result into containerd.

    oci-image.py --pvtapi BINARY --ref REF --out OUT.tar
        The pvtapi image: BINARY (the operator, with its `run` and `probe` subcommands) stripped
        at /pvtapi-operator, user 65532, no shell, the host's root CAs at
        /etc/ssl/certs/ca-certificates.crt (as distroless/static has them). A dynamically linked BINARY (the debug build
        `cargo test` already made) brings exactly the shared objects it needs (from ldd), so the
        test suite never compiles the AWS SDK a third time for the image. The Dockerfile at the
        repository root builds the same layout from a static release binary.

    oci-image.py --ref REF --out OUT.tar --entrypoint /x --user U:G --file SRC:DEST [--file ...]
        Any other image from static files.

Prints the manifest digest (`sha256:...`) on stdout.
"""

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

# The pvtapi image's contract, shared with the Dockerfile (tests/tests/image.rs checks both agree).
PVTAPI_ENTRYPOINT = "/pvtapi-operator"
PVTAPI_USER = "65532:65532"
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = "root:x:0:\nnonroot:x:65532:\n"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def fail(msg):
    print(f"oci-image: {msg}", file=sys.stderr)
    sys.exit(1)


def shared_objects(binary):
    """The ELF interpreter and every shared object `binary` loads, as absolute host paths."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    text = out.stdout + out.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        fail(f"ldd {binary} failed: {text.strip()}")
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if "not found" in line:
            fail(f"{binary} needs a library that is not installed: {line}")
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"(/\S+)\s+\(", line)
        if m:
            paths.append(m.group(1))
    return sorted(set(paths))


def tar_bytes(entries):
    """entries: list of (dest, kind, data, mode) with kind 'dir' | 'file' | 'symlink'."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dest, kind, data, mode in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(dest.lstrip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = EPOCH, 0, 0, "", "", mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layer_entries(files):
    """files: list of (src, dest, mode). Adds the parent directories."""
    entries, dirs = [], set()
    for src, dest, mode in files:
        with open(src, "rb") as f:
            data = f.read()
        entries.append((dest, "file", data, mode))
        parent = os.path.dirname(dest)
        while parent not in ("", "/"):
            dirs.add(parent)
            parent = os.path.dirname(parent)
    entries += [(d, "dir", None, 0o755) for d in dirs]
    return entries


def blob(blobs, media_type, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build(ref, entries, entrypoint, user, labels):
    layer = tar_bytes(entries)
    blobs = {}
    layer_desc = blob(blobs, "application/vnd.oci.image.layer.v1.tar", layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": user,
            "Entrypoint": entrypoint if isinstance(entrypoint, list) else [entrypoint],
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/substrate/oci-image.py"}],
    }
    config_desc = blob(blobs, "application/vnd.oci.image.config.v1+json", canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = blob(blobs, "application/vnd.oci.image.manifest.v1+json", canonical(manifest))
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            dict(
                manifest_desc,
                platform={"architecture": "amd64", "os": "linux"},
                annotations={"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag},
            )
        ],
    }
    layout = [("oci-layout", "file", canonical({"imageLayoutVersion": "1.0.0"}), 0o644),
              ("index.json", "file", canonical(index), 0o644),
              ("blobs", "dir", None, 0o755), ("blobs/sha256", "dir", None, 0o755)]
    layout += [(f"blobs/sha256/{d.split(':')[1]}", "file", data, 0o644) for d, data in blobs.items()]
    return manifest_desc["digest"], tar_bytes(layout), len(layer)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", required=True, help="image reference, e.g. pvtapi.local/pvtapi-operator:dev")
    ap.add_argument("--out", required=True, help="the OCI layout tarball to write")
    ap.add_argument("--pvtapi", metavar="BINARY", help="build the pvtapi image from this operator binary")
    ap.add_argument("--file", action="append", default=[], metavar="SRC:DEST", help="a file to add (mode 0755)")
    ap.add_argument("--entrypoint", help="absolute path of the entrypoint inside the image")
    ap.add_argument("--entrypoint-arg", action="append", default=[], metavar="ARG",
                    help="an argument fixed in the entrypoint (before any the pod gives)")
    ap.add_argument("--user", help="numeric UID:GID the container runs as")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.pvtapi:
            if args.file or args.entrypoint or args.user:
                fail("--pvtapi sets the files, entrypoint and user itself")
            if not os.access(args.pvtapi, os.X_OK):
                fail(f"{args.pvtapi} is not an executable file (build it: cargo build -p pvtapi-operator)")
            stripped = os.path.join(tmp, "pvtapi-operator")
            shutil.copyfile(args.pvtapi, stripped)
            subprocess.run(["strip", "--strip-all", stripped], check=True)
            files = [(stripped, PVTAPI_ENTRYPOINT, 0o755)]
            files += [(os.path.realpath(so), so, 0o755) for so in shared_objects(args.pvtapi)]
            # The root CAs, where distroless/static (the Dockerfile's base) has them: the AWS SDK
            # loads the system's roots for HTTPS and refuses to start without any.
            if not os.path.isfile(CA_BUNDLE):
                fail(f"{CA_BUNDLE} is missing: apt-get install ca-certificates (tests/substrate/install.sh)")
            files.append((CA_BUNDLE, CA_BUNDLE, 0o644))
            entries = layer_entries(files)
            entries += [("/etc/passwd", "file", PASSWD.encode(), 0o644), ("/etc/group", "file", GROUP.encode(), 0o644),
                        ("/tmp", "dir", None, 0o1777)]  # /etc comes with the CA bundle
            entrypoint, user = PVTAPI_ENTRYPOINT, PVTAPI_USER
            labels = {"org.opencontainers.image.title": "pvtapi-operator",
                      "org.opencontainers.image.description": "pvtapi operator and probe (run | probe)"}
        else:
            if not (args.file and args.entrypoint and args.user):
                fail("give --file SRC:DEST (one or more), --entrypoint and --user, or --pvtapi BINARY")
            files = []
            for spec in args.file:
                src, sep, dest = spec.partition(":")
                if not sep or not dest.startswith("/"):
                    fail(f"--file {spec!r}: expected SRC:/absolute/dest")
                if not os.path.isfile(src):
                    fail(f"--file {spec!r}: {src} is not a file")
                files.append((src, dest, 0o755))
            entrypoint = [args.entrypoint, *args.entrypoint_arg] if args.entrypoint_arg else args.entrypoint
            entries, user, labels = layer_entries(files), args.user, {}
        if not re.fullmatch(r"[0-9]+:[0-9]+", user):
            fail(f"--user {user!r}: expected numeric UID:GID")
        digest, layout, layer_size = build(args.ref, entries, entrypoint, user, labels)
    tmp_out = args.out + ".tmp"
    with open(tmp_out, "wb") as f:
        f.write(layout)
    os.replace(tmp_out, args.out)
    print(f"oci-image: {args.ref} {digest} layer {layer_size} bytes -> {args.out}", file=sys.stderr)
    print(digest)


if __name__ == "__main__":
    main()
