//! Moving a log's start: DeleteRecords and time and size retention
//! (`cleanup.policy=delete`), which delete whole segments below it.

use tracing::info;

use super::{file_stem, Log, LogError, Segment};

impl Log {
    /// Advances the log start offset (DeleteRecords), deleting segments that
    /// fall wholly below it.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let end = self.end_offset();
        if offset > end || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.delete_segments_below_start()?;
            self.epochs.truncate_from_start(offset)?;
        }
        Ok(self.log_start_offset)
    }

    fn delete_segments_below_start(&mut self) -> Result<(), LogError> {
        let active_base = self.active().base_offset;
        let doomed: Vec<i64> = self
            .segments
            .iter()
            .filter(|(b, s)| **b != active_base && s.next_offset <= self.log_start_offset)
            .map(|(b, _)| *b)
            .collect();
        for b in doomed {
            if let Some(seg) = self.segments.remove(&b) {
                seg.delete()?;
            }
        }
        Ok(())
    }

    /// Applies time and size retention (cleanup.policy=delete). Returns the
    /// number of segments deleted.
    pub fn apply_retention(&mut self, now: i64) -> Result<usize, LogError> {
        if !self.config.delete {
            return Ok(0);
        }
        let mut doomed = Vec::new();
        let retention_ms = self.config.retention_ms;
        let active_base = self.active().base_offset;
        if retention_ms >= 0 {
            for (b, s) in &self.segments {
                let newest = if s.max_timestamp.0 >= 0 {
                    s.max_timestamp.0
                } else {
                    s.created_ms
                };
                // (An empty segment other than the active one is left by the
                // cleaner; its age is its file's, as Kafka's lastModified.)
                if (s.size() > 0 || *b != active_base) && now - newest > retention_ms {
                    doomed.push(*b);
                } else {
                    break;
                }
            }
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            for (b, s) in &self.segments {
                if excess <= 0 {
                    break;
                }
                if s.size() as i64 <= excess || doomed.contains(b) {
                    excess -= s.size() as i64;
                    if !doomed.contains(b) {
                        doomed.push(*b);
                    }
                } else {
                    break;
                }
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        // Kafka rolls an expired active segment so that it too can go.
        if doomed.contains(&self.active().base_offset) {
            self.roll(now)?;
        }
        let n = doomed.len();
        for b in doomed {
            if let Some(seg) = self.segments.remove(&b) {
                let next = seg.next_offset;
                info!(dir = %self.dir.display(), segment = %file_stem(b), "deleting segment by retention");
                seg.delete()?;
                self.log_start_offset = self.log_start_offset.max(next);
            }
        }
        if self.segments.is_empty() {
            let start = self.log_start_offset;
            self.segments
                .insert(start, Segment::create(&self.dir, start, now)?);
        }
        self.epochs.truncate_from_start(self.log_start_offset)?;
        Ok(n)
    }
}
