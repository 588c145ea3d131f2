//! `FetchPlugins.java` (the `plugins` init container of Connect workers) run by a real JVM
//! over a plan `connect::plugins::plan_file` renders, against a small HTTP server: a jar
//! stored under its name with its checksum checked, then a wrong checksum, a 404 and an
//! unreachable repository, each a non-zero exit with the message the operator reports.
//! Skipped when `java` is not installed.

mod fetch_support;

use fetch_support::{fetch, have, serve, sha512_hex};
use runnel_operator::connect::plugins::{Download, Kind};

const JAR: &[u8] = b"PK\x03\x04 not really a jar, but bytes with a known sha512";

fn jar(url: String, sha512: Option<String>) -> Download {
    Download {
        plugin: "p".into(),
        kind: Kind::File,
        url,
        sha512,
        file_name: Some("x-1.jar".into()),
    }
}

#[test]
fn downloads_check_checksums_and_report_failures() {
    if !have("java", "-version") {
        eprintln!("skipped: no java");
        return;
    }
    let repo = serve(vec![("x.jar".into(), JAR.to_vec())]);
    let dir = std::env::temp_dir().join(format!("fetch-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = sha512_hex(JAR);

    let (ok, err) = fetch(&dir, &[jar(format!("{repo}/x.jar"), Some(good.clone()))]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(dir.join("plugins/p/x-1.jar")).expect("stored"),
        JAR
    );

    let bad = "0".repeat(128);
    let (ok, err) = fetch(&dir, &[jar(format!("{repo}/x.jar"), Some(bad.clone()))]);
    assert!(!ok);
    assert!(
        err.contains("plugin download failed: checksum mismatch")
            && err.contains(&good)
            && err.contains(&bad),
        "{err}"
    );
    assert!(
        !dir.join("plugins/p/x-1.jar").exists(),
        "a plugin directory is emptied first; a bad download is not kept"
    );

    let (ok, err) = fetch(&dir, &[jar(format!("{repo}/missing.jar"), None)]);
    assert!(!ok);
    assert!(err.contains("HTTP 404"), "{err}");

    let _ = std::fs::remove_dir_all(&dir);
}
