//! The committed CRD manifests must be exactly what the Rust types generate.

use std::path::PathBuf;

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

#[test]
fn committed_crd_yaml_matches_the_types() {
    let generated = pvtapi_crds::crd_yaml().expect("render CRD");
    for rel in [pvtapi_crds::CRD_FILE, pvtapi_crds::CHART_CRD_FILE] {
        let committed = std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| {
            panic!("{rel} is missing ({e}); run `cargo run -p pvtapi-crds --bin crdgen -- --write`")
        });
        assert!(
            committed == generated,
            "{rel} is out of date with crds/src; run `cargo run -p pvtapi-crds --bin crdgen -- --write` and commit the result"
        );
    }
}

#[test]
fn committed_root_cause_reference_matches_the_codes() {
    let committed = std::fs::read_to_string(repo_file(pvtapi_crds::ROOT_CAUSES_DOC)).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); run `cargo run -p pvtapi-crds --bin crdgen -- --write`",
            pvtapi_crds::ROOT_CAUSES_DOC
        )
    });
    assert!(
        committed == pvtapi_crds::root_causes_markdown(),
        "{} is out of date with crds/src/root_cause.rs; run `cargo run -p pvtapi-crds --bin crdgen -- --write`",
        pvtapi_crds::ROOT_CAUSES_DOC
    );
}
