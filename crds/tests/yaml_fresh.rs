//! The committed CRD YAML must match the Rust types: regenerate with
//! `cargo run -p runnel-crds --bin crdgen` after changing them.

use std::path::Path;

#[test]
fn committed_crd_yaml_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stale = Vec::new();
    for (file, crd) in runnel_crds::all_crds() {
        let want = runnel_crds::render_yaml(&crd).expect("render");
        for dir in ["crds/yaml", "charts/runnel/crds"] {
            let path = root.join(dir).join(&file);
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            if have != want {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale CRD YAML (run `cargo run -p runnel-crds --bin crdgen`): {stale:?}"
    );
}

#[test]
fn crds_have_names_category_and_status() {
    let crds = runnel_crds::all_crds();
    let names: Vec<_> = crds.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "kafkaclusters.kafka.runnel.dev.yaml",
            "kafkatopics.kafka.runnel.dev.yaml",
            "kafkaconnects.kafka.runnel.dev.yaml",
            "kafkaconnectors.kafka.runnel.dev.yaml"
        ]
    );
    for (_, crd) in &crds {
        assert_eq!(crd.spec.group, "kafka.runnel.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["kafka".to_string()][..])
        );
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
    }
}
