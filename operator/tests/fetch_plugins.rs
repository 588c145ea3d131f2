//! `FetchPlugins.java` (the `plugins` init container of Connect workers) run by a real JVM
//! over a plan `connect::plugins::plan_file` renders, against a small HTTP server: a jar
//! stored under its name with its checksum checked, then a wrong checksum, a 404 and an
//! unreachable repository, each a non-zero exit with the message the operator reports.
//! Skipped when `java` is not installed.

use runnel_operator::connect::plugins::{plan_file, Download, Kind, FETCHER_SOURCE};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

const JAR: &[u8] = b"PK\x03\x04 not really a jar, but bytes with a known sha512";

/// Serves `/repo/x.jar` and answers 404 to anything else, until the process ends.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let mut out = stream;
            if request.starts_with("GET /repo/x.jar ") {
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    JAR.len()
                );
                let _ = out.write_all(JAR);
            } else {
                let _ = write!(
                    out,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        }
    });
    format!("http://{addr}/repo")
}

fn sha512_hex(data: &[u8]) -> String {
    let out = Command::new("sha512sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha512sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hex")
        .to_string()
}

fn fetch(dir: &Path, downloads: &[Download]) -> (bool, String) {
    let src = dir.join("FetchPlugins.java");
    std::fs::write(&src, FETCHER_SOURCE).expect("source");
    let plan = dir.join("plugins.tsv");
    std::fs::write(&plan, plan_file(downloads)).expect("plan");
    let out = Command::new("java")
        .arg(&src)
        .arg(&plan)
        .arg(dir.join("plugins"))
        .output()
        .expect("java");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

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
    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("skipped: no java");
        return;
    }
    let repo = serve();
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
