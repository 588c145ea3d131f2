//! Kafka's checkpoint files (`leader-epoch-checkpoint`,
//! `log-start-offset-checkpoint`, `recovery-point-offset-checkpoint`): a
//! version line (0), a count line, then one entry per line.
//!
//! Writes are durable: the temporary file is fsynced, renamed over the old
//! one, and the directory is fsynced so that the rename itself survives a
//! crash. Reads tell an absent file (nothing recorded yet) from an unreadable
//! one, so that the caller can log it and rebuild what the file held.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Why a checkpoint file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file exists but cannot be read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        source: io::Error,
    },
    /// The file does not hold a well-formed checkpoint.
    #[error("malformed checkpoint {file}: {why}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong.
        why: String,
    },
}

/// fsyncs a directory, so that entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `lines` to `path` in Kafka's checkpoint format, atomically and durably.
pub fn write(path: &Path, lines: &[String]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = io::BufWriter::new(File::create(&tmp)?);
        writeln!(f, "0")?;
        writeln!(f, "{}", lines.len())?;
        for l in lines {
            writeln!(f, "{l}")?;
        }
        f.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Reads a checkpoint, parsing each entry with `parse`: `Ok(None)` when the
/// file does not exist, an error when it exists but is unreadable, has
/// another version, fewer entries than it says, or an entry `parse` rejects.
/// Lines after the announced count are ignored, as Kafka does.
pub fn read<T>(
    path: &Path,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<Vec<T>>, CheckpointError> {
    let file = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Io { file, source }),
    };
    let bad = |why: String| CheckpointError::Malformed {
        file: file.clone(),
        why,
    };
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("0") => {}
        Some(v) => return Err(bad(format!("unknown version {v:?}"))),
        None => return Err(bad("empty file".into())),
    }
    let count = lines
        .next()
        .and_then(|l| l.trim().parse::<usize>().ok())
        .ok_or_else(|| bad("no entry count".into()))?;
    let mut out = Vec::new();
    for i in 0..count {
        let line = lines
            .next()
            .ok_or_else(|| bad(format!("{count} entries announced, {i} found")))?;
        out.push(parse(line).ok_or_else(|| bad(format!("entry {i} is malformed: {line:?}")))?);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(l: &str) -> Option<(i32, i64)> {
        let mut it = l.split(' ');
        let e = it.next()?.parse().ok()?;
        let o = it.next()?.parse().ok()?;
        it.next().is_none().then_some((e, o))
    }

    #[test]
    fn roundtrip_absent_and_malformed() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("cp");
        assert!(read(&p, pair).expect("absent").is_none());
        write(&p, &["1 0".into(), "3 10".into()]).expect("write");
        assert_eq!(read(&p, pair).expect("read"), Some(vec![(1, 0), (3, 10)]));
        assert!(!dir.path().join("cp.tmp").exists());
        for bad in [
            "",
            "1\n0\n",
            "0\n",
            "0\nx\n",
            "0\n2\n1 0\n",
            "0\n1\n1 zero\n",
            "0\n1\n1 0 7\n",
        ] {
            std::fs::write(&p, bad).expect("write");
            assert!(
                matches!(read(&p, pair), Err(CheckpointError::Malformed { .. })),
                "{bad:?} is malformed"
            );
        }
        std::fs::write(&p, [0xff, 0xfe]).expect("write");
        assert!(read(&p, pair).is_err());
    }
}
