//! Writes the CRD manifest generated from the Rust types.
//!
//! `crdgen` prints the YAML; `crdgen --write` rewrites the committed copies under `crds/` and
//! `charts/pvtapi/crds/`, and `docs/root-causes.md` (run from the repository root). The drift test in this crate fails when
//! the committed files differ from what the types generate.

use std::process::ExitCode;

fn main() -> ExitCode {
    let yaml = match pvtapi_crds::crd_yaml() {
        Ok(yaml) => yaml,
        Err(err) => {
            eprintln!("crdgen: cannot render the CRD: {err}");
            return ExitCode::from(2);
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        [flag] if flag == "--write" => {
            for file in [pvtapi_crds::CRD_FILE, pvtapi_crds::CHART_CRD_FILE] {
                let path = std::path::Path::new(file);
                if let Some(dir) = path.parent()
                    && let Err(err) = std::fs::create_dir_all(dir)
                {
                    eprintln!("crdgen: cannot create {}: {err}", dir.display());
                    return ExitCode::from(2);
                }
                if let Err(err) = std::fs::write(path, &yaml) {
                    eprintln!("crdgen: cannot write {file}: {err} (run from the repository root)");
                    return ExitCode::from(2);
                }
                eprintln!("crdgen: wrote {file}");
            }
            if let Err(err) = std::fs::write(pvtapi_crds::ROOT_CAUSES_DOC, pvtapi_crds::root_causes_markdown()) {
                eprintln!("crdgen: cannot write {}: {err}", pvtapi_crds::ROOT_CAUSES_DOC);
                return ExitCode::from(2);
            }
            eprintln!("crdgen: wrote {}", pvtapi_crds::ROOT_CAUSES_DOC);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: crdgen [--write]\n  prints the PrivateApiConnectivityCheck CRD, or with --write updates {} and {}",
                pvtapi_crds::CRD_FILE,
                pvtapi_crds::CHART_CRD_FILE
            );
            ExitCode::from(2)
        }
    }
}
