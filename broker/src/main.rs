//! `runnel-broker [CONFIG_FILE] [--override key=value]...`
//!
//! With no arguments, runs one combined broker+controller on
//! localhost:9092 with data under `./data`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use runnel_broker::config::{parse_properties, BrokerConfig};
use runnel_broker::Broker;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

const USAGE: &str =
    "usage: runnel-broker [CONFIG_FILE] [--override key=value]... [--cluster-id ID] [--standalone | --no-initial-controllers] [--format-flags-file F] [--release-version V] [--health-port P]\n  --cluster-id ID  format empty storage with this Kafka cluster id (22 base64url characters,\n                   as `kafka-storage format --cluster-id`); refuse storage of another cluster\n  --standalone     format empty storage of a controller with controller.quorum.bootstrap.servers\n                   as a dynamic quorum of one (as `kafka-storage format --standalone`)\n  --no-initial-controllers\n                   format empty storage of such a controller as an observer, to be added with\n                   `kafka-metadata-quorum add-controller` (as `kafka-storage format --no-initial-controllers`)\n  --format-flags-file F\n                   read --standalone or --no-initial-controllers from file F if it exists (the\n                   operator's per-pod choice, which it may change without restarting the pod)\n  --release-version V\n                   bootstrap a newly formatted cluster at metadata.version V (e.g. 3.9 or 4.0-IV3;\n                   default 4.1-IV1, as `kafka-storage format --release-version`)\n  --health-port P  serve HTTP GET /ready (200 once this node serves: registered, unfenced and\n                   caught up; 503 otherwise) and /live on port P, for Kubernetes probes";

/// Command-line arguments: the broker properties and the cluster id to format with.
struct Args {
    props: BTreeMap<String, String>,
    cluster_id: Option<String>,
    standalone: bool,
    no_initial_controllers: bool,
    metadata_version: Option<i16>,
    health_port: Option<u16>,
}

/// Checks a Kafka cluster id: a UUID in unpadded base64url (22 characters).
fn check_cluster_id(id: &str) -> Result<()> {
    let ok = id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        bail!(
            "--cluster-id must be a Kafka cluster id: 22 base64url characters (a UUID), got '{id}'"
        );
    }
    Ok(())
}

fn parse_args(args: Vec<String>) -> Result<Args> {
    let mut file = None;
    let mut cluster_id = None;
    let (mut standalone, mut no_initial_controllers) = (false, false);
    let mut metadata_version = None;
    let mut flags_file = None;
    let mut health_port = None;
    let mut overrides = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--override" => {
                let kv = it.next().context("--override needs key=value")?;
                overrides.push(kv);
            }
            "--cluster-id" => {
                let id = it.next().context("--cluster-id needs a value")?;
                check_cluster_id(&id)?;
                cluster_id = Some(id);
            }
            "--release-version" | "-r" => {
                let v = it.next().context("--release-version needs a value")?;
                let Some(level) = runnel_broker::metadata::features::parse_release_version(&v)
                else {
                    bail!(
                        "Unknown metadata.version '{v}'. Supported metadata.version are {}",
                        runnel_broker::metadata::features::METADATA_VERSIONS
                            .iter()
                            .map(|v| v.1)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                metadata_version = Some(level);
            }
            "--standalone" | "-s" => standalone = true,
            "--no-initial-controllers" | "-N" => no_initial_controllers = true,
            "--health-port" => {
                let p = it.next().context("--health-port needs a port")?;
                health_port =
                    Some(p.parse::<u16>().ok().filter(|p| *p > 0).with_context(|| {
                        format!("--health-port must be a port (1-65535), got '{p}'")
                    })?);
            }
            "--format-flags-file" => {
                flags_file = Some(it.next().context("--format-flags-file needs a path")?);
            }
            s if s.starts_with("--override=") => {
                overrides.push(s["--override=".len()..].to_string())
            }
            s if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            s => {
                if file.is_some() {
                    bail!("only one config file may be given\n{USAGE}");
                }
                file = Some(s.to_string());
            }
        }
    }
    if let Some(path) = flags_file {
        let (s, n) = read_format_flags(std::path::Path::new(&path))?;
        standalone |= s;
        no_initial_controllers |= n;
    }
    let mut props = match &file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read config file {f}"))?;
            parse_properties(&text)
        }
        None => BrokerConfig::default_props(),
    };
    for kv in overrides {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--override expects key=value, got '{kv}'");
        };
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(Args {
        props,
        cluster_id,
        standalone,
        no_initial_controllers,
        metadata_version,
        health_port,
    })
}

/// The format flags in `path` (whitespace-separated `--standalone` or
/// `--no-initial-controllers`), as `(standalone, no_initial_controllers)`;
/// none when the file does not exist. They matter only when empty storage is
/// formatted, so a changed file needs no restart.
fn read_format_flags(path: &std::path::Path) -> Result<(bool, bool)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((false, false)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let (mut standalone, mut none) = (false, false);
    for flag in text.split_whitespace() {
        match flag {
            "--standalone" => standalone = true,
            "--no-initial-controllers" => none = true,
            other => bail!(
                "{}: only --standalone and --no-initial-controllers may be given, not '{other}'",
                path.display()
            ),
        }
    }
    Ok((standalone, none))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("runnel-broker: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args(std::env::args().skip(1).collect())?;
    let (mut config, warnings) =
        BrokerConfig::from_props(args.props).map_err(|e| anyhow::anyhow!("{e}"))?;
    config.format_cluster_id = args.cluster_id;
    config.format_standalone = args.standalone;
    config.format_no_initial_controllers = args.no_initial_controllers;
    config.health_port = args.health_port;
    if let Some(level) = args.metadata_version {
        config.format_metadata_version = level;
    }
    for w in warnings {
        warn!("{w}");
    }
    let threads = config.get_i64("num.io.threads", 8).clamp(1, 64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            threads.min(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
                    .max(2),
            ),
        )
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let broker = Broker::start(config)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let failed = tokio::select! {
            _ = term.recv() => { info!("received SIGTERM"); None }
            _ = int.recv() => { info!("received SIGINT"); None }
            why = broker.fatal() => Some(why),
        };
        if let Some(why) = &failed {
            tracing::error!(
                error = %why,
                "FATAL: the metadata quorum stopped; shutting down instead of serving without metadata"
            );
        }
        broker.shutdown().await;
        if let Some(why) = failed {
            anyhow::bail!("the metadata quorum stopped on a fatal error: {why}");
        }
        Ok::<_, anyhow::Error>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_flags_come_from_a_file_when_it_exists() {
        let dir = std::env::temp_dir().join(format!("runnel-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("flags");
        let args = |f: &std::path::Path| {
            parse_args(vec!["--format-flags-file".into(), f.display().to_string()])
        };
        let a = args(&f).expect("a missing file is no flag");
        assert!(!a.standalone && !a.no_initial_controllers);
        std::fs::write(&f, "--standalone\n").expect("write");
        assert!(args(&f).expect("standalone").standalone);
        std::fs::write(&f, " --no-initial-controllers ").expect("write");
        let a = args(&f).expect("none");
        assert!(a.no_initial_controllers && !a.standalone);
        std::fs::write(&f, "--cluster-id x").expect("write");
        let e = args(&f).err().expect("refused").to_string();
        assert!(e.contains("not '--cluster-id'"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
