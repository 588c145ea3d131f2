//! The raft state machine: applies committed entries to the [`ClusterImage`]
//! published through a watch channel, and builds, stores and installs
//! snapshots.
//!
//! The image itself lives in the watch channel (copy-on-write through
//! `Arc::make_mut`), so readers always see a consistent, fully applied image.
//! It is not persisted on every apply: the snapshot file is the durable state,
//! and on restart openraft re-applies the committed entries after it.
//!
//! The snapshot file `snapshot` holds two frames (see [`super::frame`]): the
//! JSON [`SnapshotMeta`] (last log id, membership, snapshot id), then the JSON
//! image. It is replaced atomically (temp file, fsync, rename, fsync dir).

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError,
};
use tokio::sync::{watch, Mutex};

use super::frame;
use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::metadata::ClusterImage;

const SNAPSHOT_FILE: &str = "snapshot";

/// The current snapshot: its meta and serialized image.
#[derive(Clone)]
struct CurrentSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// State shared by the state machine and its snapshot builders.
struct Shared {
    dir: PathBuf,
    /// The current snapshot; the lock also serializes snapshot file writes.
    current: Mutex<Option<CurrentSnapshot>>,
    /// Makes snapshot ids unique within this process.
    seq: AtomicU64,
}

/// The metadata state machine.
pub struct StateMachine {
    tx: watch::Sender<Arc<ClusterImage>>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    shared: Arc<Shared>,
}

/// Builds a snapshot from a point-in-time view of the image.
pub struct SnapshotBuilder {
    image: Arc<ClusterImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    shared: Arc<Shared>,
}

fn read_snapshot_file(path: &Path) -> io::Result<Option<(SnapshotMeta, ClusterImage, Vec<u8>)>> {
    let buf = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let corrupt = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is corrupt", path.display()),
        )
    };
    let (meta_json, n) = frame::decode(&buf).ok_or_else(corrupt)?;
    let (data, m) = buf.get(n..).and_then(frame::decode).ok_or_else(corrupt)?;
    if n + m != buf.len() {
        return Err(corrupt());
    }
    let meta: SnapshotMeta = serde_json::from_slice(meta_json).map_err(io::Error::other)?;
    let image: ClusterImage = serde_json::from_slice(data).map_err(io::Error::other)?;
    Ok(Some((meta, image, data.to_vec())))
}

impl Shared {
    /// Persists `snap` and makes it current, unless a newer one already is.
    async fn store(&self, snap: CurrentSnapshot) -> Result<(), StorageError> {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > snap.meta.last_log_id)
        {
            return Ok(());
        }
        let sig = snap.meta.signature();
        let err = |e: io::Error| -> StorageError {
            StorageIOError::write_snapshot(Some(sig.clone()), AnyError::new(&e)).into()
        };
        let meta_json = serde_json::to_vec(&snap.meta).map_err(|e| err(io::Error::other(e)))?;
        let mut bytes = frame::encode(&meta_json).map_err(err)?;
        bytes.extend_from_slice(&frame::encode(&snap.data).map_err(err)?);
        let path = self.dir.join(SNAPSHOT_FILE);
        tokio::task::spawn_blocking(move || frame::write_atomic(&path, &bytes, true))
            .await
            .map_err(|e| err(io::Error::other(e.to_string())))?
            .map_err(err)?;
        tracing::info!(snapshot = %snap.meta, "stored metadata snapshot");
        *current = Some(snap);
        Ok(())
    }
}

impl StateMachine {
    /// Opens the state machine in `dir`, restoring the latest snapshot (if
    /// any) into the image published through `tx`.
    pub fn open(dir: &Path, tx: watch::Sender<Arc<ClusterImage>>) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut last_applied = None;
        let mut membership = StoredMembership::default();
        let mut current = None;
        if let Some((meta, mut image, data)) = read_snapshot_file(&dir.join(SNAPSHOT_FILE))? {
            tracing::info!(snapshot = %meta, "restoring metadata image from snapshot");
            last_applied = meta.last_log_id;
            membership = meta.last_membership.clone();
            image.last_applied = meta.last_log_id.map(|l| l.index).unwrap_or(0);
            tx.send_modify(|cur| {
                image.controller_id = cur.controller_id;
                *cur = Arc::new(image);
            });
            current = Some(CurrentSnapshot { meta, data });
        }
        Ok(Self {
            tx,
            last_applied,
            membership,
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                current: Mutex::new(current),
                seq: AtomicU64::new(0),
            }),
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match &self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, seq),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let data = serde_json::to_vec(&*self.image).map_err(|e| {
            StorageError::from(StorageIOError::write_snapshot(
                Some(meta.signature()),
                AnyError::new(&e),
            ))
        })?;
        self.shared
            .store(CurrentSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            })
            .await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let membership = &mut self.membership;
        self.tx.send_modify(|cur| {
            let img = Arc::make_mut(cur);
            for e in &entries {
                match &e.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(batch) => {
                        // Records see their own offset (a registration's
                        // offset is the broker's epoch).
                        img.last_applied = e.log_id.index;
                        for r in &batch.0 {
                            img.apply(r);
                        }
                    }
                    EntryPayload::Membership(m) => {
                        *membership = StoredMembership::new(Some(e.log_id), m.clone());
                    }
                }
            }
            img.last_applied = last.index;
        });
        self.last_applied = Some(last);
        Ok(vec![(); entries.len()])
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            image: self.tx.borrow().clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut image: ClusterImage = serde_json::from_slice(&data).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::new(&e),
            ))
        })?;
        tracing::info!(snapshot = %meta, "installing metadata snapshot");
        self.shared
            .store(CurrentSnapshot {
                meta: meta.clone(),
                data,
            })
            .await?;
        image.last_applied = meta.last_log_id.map(|l| l.index).unwrap_or(0);
        self.tx.send_modify(|cur| {
            image.controller_id = cur.controller_id;
            *cur = Arc::new(image);
        });
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self.shared.current.lock().await;
        Ok(current.as_ref().map(|c| Snapshot {
            meta: c.meta.clone(),
            snapshot: Box::new(Cursor::new(c.data.clone())),
        }))
    }
}
