//! What the `FetchPlugins.java` tests share: a small HTTP server of fixed files, the
//! fetcher run by a real JVM over a plan `connect::plugins::plan_file` renders, and
//! `sha512sum`.
#![allow(dead_code)] // each test crate uses some of it

use runnel_operator::connect::plugins::{plan_file, Download, FETCHER_SOURCE};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

/// Serves each `(path, body)` at `/repo/<path>` and answers 404 to anything else, until
/// the process ends; returns the repository URL `http://127.0.0.1:<port>/repo`.
pub fn serve(files: Vec<(String, Vec<u8>)>) -> String {
    let files: HashMap<String, Vec<u8>> = files
        .into_iter()
        .map(|(p, b)| (format!("/repo/{p}"), b))
        .collect();
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
            let path = request.split(' ').nth(1).unwrap_or("");
            match files.get(path).filter(|_| request.starts_with("GET ")) {
                Some(body) => {
                    let _ = write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = out.write_all(body);
                }
                None => {
                    let _ = write!(
                        out,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    format!("http://{addr}/repo")
}

/// The SHA-512 of `data` in lower-case hex, by `sha512sum`.
pub fn sha512_hex(data: &[u8]) -> String {
    let out = Command::new("sha512sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
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

/// Runs the fetcher over `downloads` into `dir/plugins`; (exit status success, stderr).
pub fn fetch(dir: &Path, downloads: &[Download]) -> (bool, String) {
    fetch_env(dir, downloads, &[])
}

/// [`fetch`] with these environment variables set for the JVM.
pub fn fetch_env(dir: &Path, downloads: &[Download], env: &[(&str, &str)]) -> (bool, String) {
    let src = dir.join("FetchPlugins.java");
    std::fs::write(&src, FETCHER_SOURCE).expect("source");
    let plan = dir.join("plugins.tsv");
    std::fs::write(&plan, plan_file(downloads)).expect("plan");
    let out = Command::new("java")
        .envs(env.iter().copied())
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

/// Whether `program -version`/`--version` runs (the tests skip without it).
pub fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}
