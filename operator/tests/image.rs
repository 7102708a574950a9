//! The pvtapi image: built offline from the operator binary (tests/substrate/oci-image.py),
//! reproducible, non-root, no shell — and the Dockerfile users build describes the same image.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BUILDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/substrate/oci-image.py");
const DOCKERFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../Dockerfile");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvtapi-image-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Builds the image into `out` and returns the digest it printed.
fn build(out: &Path) -> String {
    let o = Command::new("python3")
        .arg(BUILDER)
        .args([
            "--pvtapi",
            env!("CARGO_BIN_EXE_pvtapi-operator"),
            "--ref",
            "pvtapi.local/pvtapi-operator:test",
            "--out",
        ])
        .arg(out)
        .output()
        .expect("run python3 (install: tests/substrate/install.sh)");
    assert!(o.status.success(), "oci-image.py failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("utf-8").trim().to_owned()
}

fn untar(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).expect("mkdir");
    let o = Command::new("tar").arg("-xf").arg(archive).arg("-C").arg(into).output().expect("tar");
    assert!(o.status.success(), "tar -xf {}: {}", archive.display(), String::from_utf8_lossy(&o.stderr));
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read blob")).expect("json blob")
}

#[test]
fn the_image_is_reproducible_nonroot_shell_free_and_matches_the_dockerfile() {
    let dir = scratch("repro");
    let (a, b) = (dir.join("a.tar"), dir.join("b.tar"));
    let digest = build(&a);
    assert_eq!(build(&b), digest, "same binary, same image digest");
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"), "byte-identical layouts");
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");

    let layout = dir.join("layout");
    untar(&a, &layout);
    let index = json(&layout.join("index.json"));
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(index["manifests"][0]["annotations"]["io.containerd.image.name"], "pvtapi.local/pvtapi-operator:test");
    let manifest = json(&blob(&layout, &digest));
    let config = json(&blob(&layout, manifest["config"]["digest"].as_str().expect("config digest")));
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/pvtapi-operator"]));

    let rootfs = dir.join("rootfs");
    untar(&blob(&layout, manifest["layers"][0]["digest"].as_str().expect("layer digest")), &rootfs);
    assert!(rootfs.join("pvtapi-operator").is_file());
    // Root CAs where distroless/static keeps them: the AWS SDK's HTTPS client panics without any
    // (seen: the chart's operator pod, reading moto, before the image had them).
    let cas = std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap_or_default();
    assert!(
        cas.contains("-----BEGIN CERTIFICATE-----"),
        "the image has the root CAs at /etc/ssl/certs/ca-certificates.crt"
    );
    for shell in ["bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"] {
        assert!(!rootfs.join(shell).exists(), "the image must have no shell, found /{shell}");
    }
    // The binary in the image runs (its shared objects came along) and is the operator.
    let o = Command::new(rootfs.join("pvtapi-operator")).arg("--version").output().expect("run the image's binary");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("pvtapi-operator "), "{o:?}");

    // The Dockerfile's final stage: same user, entrypoint and binary path.
    let dockerfile = std::fs::read_to_string(DOCKERFILE).expect("read Dockerfile");
    let final_stage = dockerfile.rsplit_once("\nFROM ").map(|(_, s)| s).expect("a multi-stage Dockerfile");
    for line in [
        "USER 65532:65532",
        r#"ENTRYPOINT ["/pvtapi-operator"]"#,
        "COPY --from=build /pvtapi-operator /pvtapi-operator",
    ] {
        assert!(final_stage.lines().any(|l| l.trim() == line), "Dockerfile final stage lacks `{line}`:\n{final_stage}");
    }
    assert!(final_stage.starts_with("gcr.io/distroless/static") || final_stage.starts_with("scratch"), "{final_stage}");
    assert!(dockerfile.contains("--target x86_64-unknown-linux-musl"), "the Dockerfile builds a static binary");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_builder_refuses_bad_input_with_a_clear_message() {
    let dir = scratch("bad");
    for (args, want) in [
        (vec!["--pvtapi", "/nonexistent/pvtapi-operator"], "is not an executable file"),
        (
            vec!["--file", "/etc/hostname:relative", "--entrypoint", "/x", "--user", "1:1"],
            "expected SRC:/absolute/dest",
        ),
        (vec!["--file", "/etc/hostname:/x", "--entrypoint", "/x", "--user", "nobody"], "expected numeric UID:GID"),
    ] {
        let o = Command::new("python3")
            .arg(BUILDER)
            .args(["--ref", "x/y:z", "--out"])
            .arg(dir.join("out.tar"))
            .args(&args)
            .output()
            .expect("python3");
        assert!(!o.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want) && !err.contains("Traceback"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
