//! Shared helpers for integration tests: an in-process broker on port 0
//! with its own temporary data directory and its own tokio runtime.
//!
//! The broker runs on a dedicated multi-threaded runtime on a background
//! thread, so tests may freely make blocking client calls (rdkafka's
//! `BaseConsumer::poll`, `fetch_metadata`, ...) without starving it.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use runnel_broker::config::BrokerConfig;
use tokio::sync::oneshot;

/// A broker running in-process; shut it down with [`TestBroker::shutdown`].
pub struct TestBroker {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

/// Returns a currently free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr()
        .expect("local addr of ephemeral listener")
        .port()
}

impl TestBroker {
    /// Starts a combined broker+controller (node 1) with default props.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts a broker after letting `tweak` adjust the props.
    pub fn start_with(tweak: impl FnOnce(&mut std::collections::BTreeMap<String, String>)) -> Self {
        let dir = tempfile::tempdir().expect("create broker tempdir");
        let controller_port = free_port();
        let mut props = BrokerConfig::default_props();
        props.insert("log.dirs".into(), dir.path().display().to_string());
        props.insert(
            "listeners".into(),
            format!("PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{controller_port}"),
        );
        props.insert(
            "advertised.listeners".into(),
            "PLAINTEXT://127.0.0.1:0".into(),
        );
        props.insert(
            "controller.quorum.voters".into(),
            format!("1@127.0.0.1:{controller_port}"),
        );
        tweak(&mut props);
        let (config, _warnings) = BrokerConfig::from_props(props).expect("valid broker config");

        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-broker".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("build broker runtime");
                rt.block_on(async move {
                    let broker = match runnel_broker::Broker::start(config).await {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = addr_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = addr_tx.send(Ok(broker.addr()));
                    // Either an explicit shutdown or the handle being dropped.
                    let _ = stop_rx.await;
                    broker.shutdown().await;
                });
            })
            .expect("spawn broker thread");
        let addr = addr_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("broker start did not report within 30 s")
            .expect("broker failed to start");
        Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            dir,
        }
    }

    /// The PLAINTEXT listener address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `bootstrap.servers` value for clients.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Graceful shutdown; waits for the broker thread to finish.
    /// Drop every client first, or the broker waits for their connections.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() && !std::thread::panicking() {
                panic!("broker thread panicked");
            }
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
