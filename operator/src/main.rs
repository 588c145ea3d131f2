//! `runnel-operator`: the Kubernetes operator for Runnel.

use anyhow::{Context as _, Result};
use clap::Parser;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{Api, Client};
use runnel_crds::{KafkaCluster, KafkaConnect, KafkaConnector, KafkaTopic};
use runnel_operator::context::{Context, Settings};
use runnel_operator::http::{router, HttpState};
use runnel_operator::leader::{elect, LeaseSettings};
use runnel_operator::metrics::Metrics;
use runnel_operator::{cluster, connect, connector, topic};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Reconciles KafkaCluster, KafkaTopic, KafkaConnect and KafkaConnector resources (group kafka.runnel.dev).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Watch only this namespace (repeatable). Default: all namespaces.
    #[arg(long = "namespace", value_name = "NS")]
    namespaces: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Elect a leader on a Lease, so several replicas are safe.
    #[arg(long)]
    leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "runnel-operator")]
    lease_name: String,
    /// Namespace of the leader Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// Lease duration in seconds.
    #[arg(long, default_value_t = 15)]
    lease_duration: u64,
    /// Image of clusters that set neither `image` nor `version`.
    #[arg(long, default_value = runnel_operator::DEFAULT_BROKER_IMAGE)]
    broker_image: String,
    /// How often a ready KafkaTopic is compared with Kafka (out-of-band changes are reverted).
    #[arg(long, default_value_t = 30)]
    topic_resync_seconds: u64,
    /// How often a ready KafkaCluster is re-checked.
    #[arg(long, default_value_t = 60)]
    cluster_resync_seconds: u64,
    /// Image of KafkaConnects that set no `image` (the Connect image `e2e/image/build.py
    /// --connect` builds: Apache Kafka 4.1.1's jars, Debian's JRE, bundled plugins).
    #[arg(long, default_value = runnel_operator::DEFAULT_CONNECT_IMAGE)]
    connect_image: String,
    /// How often a ready KafkaConnector is compared with Connect (REST changes are reverted).
    #[arg(long, default_value_t = 30)]
    connector_resync_seconds: u64,
    /// The back-off unit of `KafkaConnector.spec.autoRestart`: the n-th automatic restart is
    /// followed by `n*n + n` units (at most 60) before the next one.
    #[arg(long, default_value_t = 60)]
    connector_restart_backoff_seconds: u64,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        // Logged once (logging may not be set up yet when the arguments are bad).
        eprintln!("runnel-operator: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let client = Client::try_default()
        .await
        .context("cannot configure a Kubernetes client")?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    info!(version = %runnel_operator::VERSION, apiserver = %version.git_version, namespaces = ?args.namespaces, "runnel-operator starting");

    let metrics = Metrics::default();
    let pod_name = std::env::var("POD_NAME").ok();
    let ctx = Arc::new(Context::new(
        client.clone(),
        Settings {
            broker_image: args.broker_image.clone(),
            topic_resync: Duration::from_secs(args.topic_resync_seconds.max(1)),
            cluster_resync: Duration::from_secs(args.cluster_resync_seconds.max(1)),
            connect_image: args.connect_image.clone(),
            connector_resync: Duration::from_secs(args.connector_resync_seconds.max(1)),
            connector_restart_backoff: Duration::from_secs(
                args.connector_restart_backoff_seconds.max(1),
            ),
        },
        metrics.clone(),
        pod_name.clone(),
    ));

    // Shutdown: SIGTERM/SIGINT, or losing the lease.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stop_on_signal = stop_tx.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("received SIGTERM"),
            _ = int.recv() => info!("received SIGINT"),
        }
        let _ = stop_on_signal.send(true);
    });

    let http_state = HttpState {
        metrics: metrics.clone(),
        ready: ctx.running.clone(),
    };
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.metrics_addr))?;
    info!(addr = %args.metrics_addr, "serving /metrics, /healthz, /readyz");
    let mut http_stop = stop_rx.clone();
    tokio::spawn(async move {
        let serve = axum::serve(listener, router(http_state)).with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            error!(error = %e, "metrics server failed");
        }
    });

    let mut lost_leadership = false;
    let lease = if args.leader_elect {
        let settings = LeaseSettings {
            name: args.lease_name.clone(),
            namespace: args
                .lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "default".into()),
            identity: pod_name
                .clone()
                .unwrap_or_else(|| format!("runnel-operator-{}", uuid::Uuid::new_v4())),
            duration_secs: args.lease_duration.max(2),
        };
        let (mut leading, task) = elect(client.clone(), &settings)
            .await
            .context("cannot start leader election")?;
        // A standby replica is healthy and ready; it just does not reconcile.
        ctx.running.store(true, Ordering::Relaxed);
        let mut stop = stop_rx.clone();
        let became = tokio::select! {
            r = leading.wait_for(|l| *l) => r.map(|_| ()).context("leader election ended"),
            _ = stop.wait_for(|s| *s) => Err(anyhow::anyhow!("stopped")),
        };
        if let Err(e) = became {
            drop(leading);
            let _ = task.await;
            info!(reason = %e, "stopped before becoming leader");
            return Ok(());
        }
        info!(identity = %settings.identity, "became leader");
        metrics.leader.set(1);
        // Losing the lease stops the controllers; the process then exits non-zero so the
        // pod restarts clean (as controller-runtime does).
        let stop_on_loss = stop_tx.clone();
        let mut watch_loss = leading.clone();
        let loss = tokio::spawn(async move {
            if watch_loss.wait_for(|l| !*l).await.is_ok() {
                warn!("lost leadership; stopping");
                let _ = stop_on_loss.send(true);
                return true;
            }
            false
        });
        Some((leading, task, loss))
    } else {
        metrics.leader.set(1);
        None
    };

    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    let mut controllers = Vec::new();
    for scope in scopes {
        let ns = scope.as_deref();
        let (topics, clusters): (Api<KafkaTopic>, Api<KafkaCluster>) = match ns {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
        let stop = stop_future(stop_rx.clone());
        controllers.push(tokio::spawn(cluster::run(
            ctx.clone(),
            client.clone(),
            scope.clone(),
            stop,
        )));
        let (connects, connectors, stateful_sets): (
            Api<KafkaConnect>,
            Api<KafkaConnector>,
            Api<StatefulSet>,
        ) = match ns {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
        let stop = stop_future(stop_rx.clone());
        controllers.push(tokio::spawn(connect::run(
            ctx.clone(),
            connects.clone(),
            stateful_sets,
            stop,
        )));
        let stop = stop_future(stop_rx.clone());
        controllers.push(tokio::spawn(connector::run(
            ctx.clone(),
            connectors,
            connects,
            stop,
        )));
        let stop = stop_future(stop_rx.clone());
        controllers.push(tokio::spawn(topic::run(
            ctx.clone(),
            topics,
            clusters,
            stop,
        )));
    }
    ctx.running.store(true, Ordering::Relaxed);
    info!("controllers running");
    for c in controllers {
        if let Err(e) = c.await {
            error!(error = %e, "controller task failed");
        }
    }
    ctx.running.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    if let Some((leading, task, loss)) = lease {
        loss.abort();
        lost_leadership = !*leading.borrow();
        drop(leading);
        match task.await {
            Ok(Ok(manager)) => {
                if let Err(e) = manager.release().await {
                    warn!(error = %e, "cannot release the lease");
                }
            }
            Ok(Err(e)) => warn!(error = %e, "lease manager failed"),
            Err(e) => warn!(error = %e, "lease task failed"),
        }
    }
    if lost_leadership {
        anyhow::bail!("lost leadership");
    }
    info!("shut down");
    Ok(())
}

/// Resolves when `rx` turns true.
async fn stop_future(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
