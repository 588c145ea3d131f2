//! Writes the CRD YAML into `crds/yaml/` and `charts/runnel/crds/`.
//!
//! Usage: `cargo run -p runnel-crds --bin crdgen [REPO_ROOT]` (default: the workspace root).
//! `--check` compares instead of writing and exits 1 when a file is stale.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for a in std::env::args().skip(1) {
        if a == "--check" {
            check = true;
        } else {
            root = PathBuf::from(a);
        }
    }
    let dirs = [root.join("crds/yaml"), root.join("charts/runnel/crds")];
    let mut stale = 0;
    for (file, crd) in runnel_crds::all_crds() {
        let yaml = match runnel_crds::render_yaml(&crd) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("crdgen: cannot render {file}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for dir in &dirs {
            let path = dir.join(&file);
            if check {
                if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                    eprintln!(
                        "crdgen: {} is stale; run `cargo run -p runnel-crds --bin crdgen`",
                        path.display()
                    );
                    stale += 1;
                }
                continue;
            }
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &yaml))
            {
                eprintln!("crdgen: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
        }
    }
    if stale > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
