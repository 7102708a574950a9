//! A stand-alone API Gateway front end for benchmarks and demos: a TLS listener with a fresh test
//! CA that answers 200 to requests carrying the API's `Host` (or `x-apigw-api-id`) and API
//! Gateway's 403 Forbidden otherwise.
//!
//! `fake-apigw API_ID [BIND_ADDR]` prints `ADDR CA_PEM_PATH` on one line, then serves until
//! stdin closes or it is killed.

use std::net::SocketAddr;

use pvtapi_testkit::apigw::{FrontEnd, Reply, TestCa, default_names, requires_api_identity};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(api_id) = args.next().filter(|a| pvtapi_crds::validate::api_id(a).is_ok()) else {
        eprintln!("usage: fake-apigw API_ID [BIND_ADDR]   (API_ID: 10 lowercase letters/digits)");
        return std::process::ExitCode::from(2);
    };
    let bind: SocketAddr = match args.next().map(|a| a.parse()) {
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(Ok(addr)) => addr,
        Some(Err(err)) => {
            eprintln!("fake-apigw: invalid bind address: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let ca = TestCa::new();
    let names = default_names("us-east-1");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (chain, key) = ca.issue(&names);
    let front =
        FrontEnd::start(bind, chain, key, requires_api_identity(&api_id, Reply::ok(r#"{"status":"ok"}"#))).await;
    println!("{} {}", front.addr(), ca.bundle_path().display());
    // Serve until stdin reaches EOF (the parent went away) or a signal ends the process.
    let _ = tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await;
    std::process::ExitCode::SUCCESS
}
