//! `docs/check-report.schema.json` is generated from the Rust types (`kubectl pvtapi schema`) and
//! must not drift; the scenario suite validates every real `-o json` output against it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pvtapi");

#[test]
fn the_documented_schema_is_the_generated_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/check-report.schema.json");
    let documented = std::fs::read_to_string(&path).unwrap_or_default();
    let out = Command::new(BIN).arg("schema").output().expect("run kubectl-pvtapi schema");
    assert!(out.status.success(), "kubectl-pvtapi schema failed: {}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).expect("UTF-8 schema");
    assert!(
        documented == generated,
        "{} is stale or missing: regenerate with\n  cargo run -p kubectl-pvtapi -- schema > docs/check-report.schema.json",
        path.display()
    );
    let schema: serde_json::Value = serde_json::from_str(&generated).expect("schema is JSON");
    assert!(jsonschema::meta::is_valid(&schema), "not a valid JSON Schema");
    assert_eq!(schema["properties"]["version"]["description"], "`pvtapi.io/check-report/v1`.");
}

#[test]
fn the_schema_rejects_what_it_should() {
    let schema: serde_json::Value =
        serde_json::from_str(&pvtapi_engine::diagnosis::CheckReport::json_schema()).expect("schema is JSON");
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let d = pvtapi_engine::diagnosis::probe_failed("pod failed", "look at the pod");
    let good = serde_json::to_value(pvtapi_engine::diagnosis::CheckReport::new(d, None, None)).expect("serialize");
    assert!(v.is_valid(&good), "{:?}", v.iter_errors(&good).map(|e| e.to_string()).collect::<Vec<_>>());
    let mut bad = good.clone();
    bad["diagnosis"]["rootCause"] = "NotACode".into();
    assert!(!v.is_valid(&bad), "an unknown root cause must not validate");
    let mut bad = good;
    bad["diagnosis"]["areas"][0]["status"] = "maybe".into();
    assert!(!v.is_valid(&bad), "an unknown area status must not validate");
}
