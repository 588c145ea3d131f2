//! The metadata quorum (placeholder API; the openraft implementation replaces
//! the body of this module).

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use super::{ClusterImage, MetadataRecord};

/// Errors from the metadata quorum.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Storage failed.
    #[error("metadata storage error: {0}")]
    Storage(String),
    /// This node is not the quorum leader.
    #[error("not the active controller")]
    NotController,
    /// The quorum is shutting down.
    #[error("metadata quorum is shut down")]
    Shutdown,
}

/// A handle to the metadata quorum.
#[derive(Clone)]
pub struct MetadataQuorum {
    tx: watch::Sender<Arc<ClusterImage>>,
}

impl MetadataQuorum {
    /// Opens (creating on first start) the quorum whose state lives in `dir`.
    pub async fn open(
        _dir: &Path,
        _node_id: i32,
        _voters: Vec<(i32, String)>,
    ) -> Result<Self, MetadataError> {
        let (tx, _) = watch::channel(Arc::new(ClusterImage::default()));
        Ok(Self { tx })
    }

    /// Commits `records` as one atomic batch and returns once they are applied
    /// to the local image.
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<(), MetadataError> {
        self.tx.send_modify(|img| {
            let mut next = (**img).clone();
            for r in &records {
                next.apply(r);
            }
            *img = Arc::new(next);
        });
        Ok(())
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<ClusterImage> {
        self.tx.borrow().clone()
    }

    /// A receiver notified on every applied change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.tx.subscribe()
    }

    /// Stops the quorum, flushing state.
    pub async fn shutdown(&self) -> Result<(), MetadataError> {
        Ok(())
    }
}
