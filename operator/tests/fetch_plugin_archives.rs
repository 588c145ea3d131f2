//! `FetchPlugins.java` unpacking `tgz` and `zip` plugin artifacts (`spec.build.plugins[]`
//! of those types) into the plugin directory on `plugin.path`, run by a real JVM against a
//! small HTTP server. The archives hold a jar and are made by Python's `tarfile` in each
//! tar format the fetcher reads (ustar with its name prefix, GNU long names, pax paths and
//! a pax global header), by GNU `tar` (`./` entries) and by Python's `zipfile`; then
//! a non-ASCII entry name stored in a UTF-8 locale (the init container's) and refused
//! readably in an ASCII one; archives with an entry outside their directory and a file
//! that is not a gzip are refused with the message the operator reports. Skipped without
//! `java` or `python3`.

mod fetch_support;

use fetch_support::{fetch, fetch_env, have, serve, sha512_hex};
use runnel_operator::connect::plugins::{Download, Kind};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Writes the archives into argv[1]: every one holds the jar `plugin.jar` (also written
/// there, to compare) as `my-connector/lib/my-connector-1.0.jar` and a second copy under a
/// long path, beside a directory entry and a symbolic link (which the fetcher skips).
const MAKE_ARCHIVES: &str = r#"
import io, os, sys, tarfile, time, zipfile
out = sys.argv[1]
jar = io.BytesIO()
with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: runnel test\r\n\r\n")
    z.writestr("com/example/MyConnector.class", bytes(range(256)) * 8)
jar = jar.getvalue()
open(os.path.join(out, "plugin.jar"), "wb").write(jar)
LONG = {
    "ustar": "my-connector/" + "u" * 90 + "/deps-1.0.jar",             # 116 chars: name + prefix
    "gnu": "my-connector/" + "g" * 120 + "/deps-1.0.jar",              # GNU ././@LongLink
    "pax": "my-connector/" + "p" * 150 + "/" + "q" * 150 + "/deps-1.0.jar",  # pax path=
}
def tgz(name, fmt, long, **kw):
    with tarfile.open(os.path.join(out, name), "w:gz", format=fmt, **kw) as t:
        for d in ("my-connector", "my-connector/lib"):
            i = tarfile.TarInfo(d); i.type = tarfile.DIRTYPE; i.mode = 0o755; i.mtime = time.time()
            t.addfile(i)
        for path in ("my-connector/lib/my-connector-1.0.jar", long):
            i = tarfile.TarInfo(path); i.size = len(jar); i.mode = 0o644
            t.addfile(i, io.BytesIO(jar))
        i = tarfile.TarInfo("my-connector/link.jar"); i.type = tarfile.SYMTYPE
        i.linkname = "lib/my-connector-1.0.jar"
        t.addfile(i)
tgz("ustar.tgz", tarfile.USTAR_FORMAT, LONG["ustar"])
tgz("gnu.tgz", tarfile.GNU_FORMAT, LONG["gnu"])
tgz("pax.tgz", tarfile.PAX_FORMAT, LONG["pax"], pax_headers={"comment": "a pax global header"})
with zipfile.ZipFile(os.path.join(out, "plugin.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("my-connector/", "")
    z.writestr("my-connector/lib/my-connector-1.0.jar", jar)
    z.writestr("my-connector/" + "z" * 150 + "/deps-1.0.jar", jar)
with zipfile.ZipFile(os.path.join(out, "evil.zip"), "w") as z:
    z.writestr("../escape.jar", jar)
with tarfile.open(os.path.join(out, "evil.tgz"), "w:gz") as t:
    i = tarfile.TarInfo("my-connector/../../escape.jar"); i.size = len(jar)
    t.addfile(i, io.BytesIO(jar))
with tarfile.open(os.path.join(out, "utf8.tgz"), "w:gz") as t:
    i = tarfile.TarInfo("my-connector/d\u00e9p\u00f4t-1.0.jar"); i.size = len(jar)
    t.addfile(i, io.BytesIO(jar))
src = os.path.join(out, "tree", "my-connector", "lib")
os.makedirs(src)
open(os.path.join(src, "my-connector-1.0.jar"), "wb").write(jar)
"#;

const LONG_PATHS: [(&str, &str); 4] = [
    ("ustar", "uuu"),
    ("gnu", "ggg"),
    ("pax", "ppp"),
    ("zip", "zzz"),
];

/// Every regular file under `dir`, by its path relative to `dir`.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            if meta.is_dir() {
                walk(root, &p, out);
            } else {
                assert!(meta.is_file(), "{} is not a regular file", p.display());
                let rel = p.strip_prefix(root).expect("under root");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn archive(plugin: &str, kind: Kind, url: String, sha512: Option<String>) -> Download {
    Download {
        plugin: plugin.into(),
        kind,
        url,
        sha512,
        file_name: None,
    }
}

#[test]
fn tgz_and_zip_artifacts_are_unpacked_into_the_plugin_directory() {
    if !have("java", "-version") || !have("python3", "--version") {
        eprintln!("skipped: no java or no python3");
        return;
    }
    let dir = std::env::temp_dir().join(format!("fetch-plugin-archives-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let made = dir.join("made");
    std::fs::create_dir_all(&made).expect("dir");
    let out = Command::new("python3")
        .arg("-c")
        .arg(MAKE_ARCHIVES)
        .arg(&made)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // GNU tar's own archive of a directory tree: `./`, `./my-connector/`, ... entries.
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(made.join("gnutar.tgz"))
        .arg("-C")
        .arg(made.join("tree"))
        .arg(".")
        .status();
    let gnu_tar = matches!(tar, Ok(s) if s.success());
    let read = |name: &str| std::fs::read(made.join(name)).expect(name);
    let jar = read("plugin.jar");
    let mut served = Vec::new();
    for name in [
        "ustar.tgz",
        "gnu.tgz",
        "pax.tgz",
        "plugin.zip",
        "evil.zip",
        "evil.tgz",
        "gnutar.tgz",
        "utf8.tgz",
    ] {
        if made.join(name).is_file() {
            served.push((name.to_string(), read(name)));
        }
    }
    served.push(("not-a.tgz".into(), b"this is not gzip".to_vec()));
    let ustar_sha = sha512_hex(&read("ustar.tgz"));
    let repo = serve(served);

    let mut plan = vec![
        archive(
            "ustar",
            Kind::Tgz,
            format!("{repo}/ustar.tgz"),
            Some(ustar_sha),
        ),
        archive("gnu", Kind::Tgz, format!("{repo}/gnu.tgz"), None),
        archive("pax", Kind::Tgz, format!("{repo}/pax.tgz"), None),
        archive("zip", Kind::Zip, format!("{repo}/plugin.zip"), None),
    ];
    if gnu_tar {
        plan.push(archive(
            "gnutar",
            Kind::Tgz,
            format!("{repo}/gnutar.tgz"),
            None,
        ));
    }
    let (ok, err) = fetch(&dir, &plan);
    assert!(ok, "{err}");
    let plugins = dir.join("plugins");
    for (plugin, long) in LONG_PATHS {
        let files = files_under(&plugins.join(plugin));
        assert_eq!(files.len(), 2, "{plugin}: {:?}", files.keys());
        assert_eq!(
            files.get("my-connector/lib/my-connector-1.0.jar"),
            Some(&jar),
            "{plugin}: {:?}",
            files.keys()
        );
        let (path, body) = files
            .iter()
            .find(|(p, _)| p.contains(long))
            .unwrap_or_else(|| panic!("{plugin}: no long path in {:?}", files.keys()));
        assert!(path.len() > 100, "{plugin}: {path}");
        assert_eq!(body, &jar, "{plugin}: {path}");
    }
    assert!(
        files_under(&plugins.join("pax"))
            .keys()
            .any(|p| p.ends_with("/deps-1.0.jar") && p.len() > 255),
        "a pax path is kept whole"
    );
    if gnu_tar {
        assert_eq!(
            files_under(&plugins.join("gnutar")),
            BTreeMap::from([(
                "my-connector/lib/my-connector-1.0.jar".to_string(),
                jar.clone()
            )])
        );
    } else {
        eprintln!("no GNU tar: its archive not checked");
    }

    for (kind, name) in [(Kind::Zip, "evil.zip"), (Kind::Tgz, "evil.tgz")] {
        let (ok, err) = fetch(
            &dir,
            &[archive("evil", kind, format!("{repo}/{name}"), None)],
        );
        assert!(!ok, "{name} was unpacked");
        assert!(
            err.contains("plugin download failed: archive")
                && err.contains("has an entry outside its directory"),
            "{err}"
        );
        assert!(
            !plugins.join("escape.jar").exists() && !dir.join("escape.jar").exists(),
            "{name} wrote outside its plugin directory"
        );
    }
    // A non-ASCII entry name: stored in a UTF-8 locale (the init container sets
    // LC_ALL=C.UTF-8), a readable failure in an ASCII one (not an uncaught exception).
    let utf8 = [archive("utf8", Kind::Tgz, format!("{repo}/utf8.tgz"), None)];
    let (ok, err) = fetch_env(&dir, &utf8, &[("LC_ALL", "C.UTF-8")]);
    assert!(ok, "{err}");
    assert_eq!(
        files_under(&plugins.join("utf8")),
        BTreeMap::from([(
            "my-connector/d\u{e9}p\u{f4}t-1.0.jar".to_string(),
            jar.clone()
        )])
    );
    let (ok, err) = fetch_env(&dir, &utf8, &[("LC_ALL", "C")]);
    assert!(!ok);
    assert!(
        err.contains("plugin download failed: archive")
            && err.contains("has an entry whose name is not a file name here"),
        "{err}"
    );
    let (ok, err) = fetch(
        &dir,
        &[archive("bad", Kind::Tgz, format!("{repo}/not-a.tgz"), None)],
    );
    assert!(!ok);
    assert!(err.contains("as a gzipped tar"), "{err}");

    let _ = std::fs::remove_dir_all(&dir);
}
