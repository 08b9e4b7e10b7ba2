//! The checkpoint: per shard, the last sequence number done (handled, filtered out or
//! discarded), in a JSON file written atomically (temp file, fsync, rename) after every
//! handled batch. A restarted poller resumes after the last handled batch, and a batch
//! handled but not checkpointed is delivered again (at least once, like Lambda).
//!
//! The checkpoint belongs to one stream ARN: when the table is re-created (a new
//! stream), the poller starts over at `TRIM_HORIZON`. (moto reuses the shard id and
//! the sequence numbers for every table, so the ARN is what tells them apart.)

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::Error;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_arn: Option<String>,
    #[serde(default)]
    shards: BTreeMap<String, ShardCheckpoint>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShardCheckpoint {
    /// The last record done (handled, filtered out or discarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
    /// Read to its end (a closed shard).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    finished: bool,
}

/// The checkpoint file, in memory: changed by the poller, then saved.
#[derive(Debug)]
pub(super) struct Checkpoint {
    path: PathBuf,
    state: CheckpointFile,
}

impl Checkpoint {
    /// Reads the checkpoint file; a missing file is an empty checkpoint.
    pub(super) fn load(path: &Path) -> Result<Self, Error> {
        let state = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::InvalidCheckpoint {
                    path: path.to_path_buf(),
                    source,
                })?
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => CheckpointFile::default(),
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            state,
        })
    }

    /// Writes the whole file atomically: a temporary file, synced, renamed over it.
    pub(super) fn save(&self) -> Result<(), Error> {
        let fail = Error::write(&self.path);
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let temp = self.path.with_file_name(name);
        let written = (|| {
            create_parent(&self.path)?;
            let bytes = serde_json::to_vec_pretty(&self.state)?;
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)
        })();
        written.map_err(fail)
    }

    /// The stream the checkpoint is for.
    pub(super) fn stream_arn(&self) -> Option<&str> {
        self.state.stream_arn.as_deref()
    }

    /// Forgets every shard: the checkpoint is now for `stream_arn`, from its beginning.
    pub(super) fn start_over(&mut self, stream_arn: &str) {
        self.state = CheckpointFile {
            stream_arn: Some(stream_arn.to_string()),
            shards: BTreeMap::new(),
        };
    }

    /// Forgets the shards not in `shards` (gone from the stream); whether there were any.
    pub(super) fn retain_shards(&mut self, shards: &HashSet<&str>) -> bool {
        let before = self.state.shards.len();
        self.state
            .shards
            .retain(|id, _| shards.contains(id.as_str()));
        self.state.shards.len() != before
    }

    /// The last record of `shard` that is done.
    pub(super) fn position(&self, shard: &str) -> Option<&str> {
        self.state.shards.get(shard)?.sequence_number.as_deref()
    }

    /// Whether `shard` is read to its end.
    pub(super) fn finished(&self, shard: &str) -> bool {
        self.state.shards.get(shard).is_some_and(|s| s.finished)
    }

    /// Marks the records of `shard` up to `sequence_number` done.
    pub(super) fn advance(&mut self, shard: &str, sequence_number: &str) {
        self.state
            .shards
            .entry(shard.to_string())
            .or_default()
            .sequence_number = Some(sequence_number.to_string());
    }

    /// Marks `shard` read to its end.
    pub(super) fn finish(&mut self, shard: &str) {
        self.state
            .shards
            .entry(shard.to_string())
            .or_default()
            .finished = true;
    }
}

/// Creates the directory `path` goes in, if it has one: the checkpoint's, which the
/// on-failure destination shares.
pub(super) fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{ARN, temp_dir};

    #[test]
    fn checkpoints_are_written_whole_and_read_back() {
        let dir = temp_dir("checkpoint");
        let path = dir.join("nested/checkpoint.json");
        let mut checkpoint = Checkpoint::load(&path).unwrap();
        assert_eq!(checkpoint.state, CheckpointFile::default());
        checkpoint.state.stream_arn = Some(ARN.into());
        checkpoint.advance("shard-1", "0042");
        checkpoint.finish("shard-0");
        checkpoint.save().unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["checkpoint.json"],
            "no temporary file is left behind"
        );
        let again = Checkpoint::load(&path).unwrap();
        assert_eq!(again.state, checkpoint.state);
        assert_eq!(again.position("shard-1"), Some("0042"));
        assert!(again.finished("shard-0") && !again.finished("shard-1"));
        assert_eq!(again.position("shard-2"), None);

        std::fs::write(&path, "{not json").unwrap();
        let err = Checkpoint::load(&path).unwrap_err();
        assert!(matches!(err, Error::InvalidCheckpoint { .. }), "{err:?}");
        assert!(err.to_string().contains("delete it"), "{err}");
        // A directory where the file should be: it cannot be read, nor written.
        let err = Checkpoint::load(&dir).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
        let blocked = Checkpoint {
            path: dir.join("nested"),
            state: CheckpointFile::default(),
        };
        let err = blocked.save().unwrap_err();
        assert!(matches!(err, Error::Write { .. }), "{err:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_stream_starts_over_and_shards_gone_from_the_stream_are_forgotten() {
        let mut checkpoint = Checkpoint {
            path: PathBuf::from("unused.json"),
            state: CheckpointFile::default(),
        };
        checkpoint.start_over(ARN);
        checkpoint.advance("shard-1", "0042");
        checkpoint.advance("shard-2", "0007");
        checkpoint.finish("shard-2");
        assert!(!checkpoint.retain_shards(&HashSet::from(["shard-1", "shard-2", "shard-3"])));
        assert!(checkpoint.retain_shards(&HashSet::from(["shard-1"])));
        assert_eq!(checkpoint.position("shard-1"), Some("0042"));
        assert_eq!(checkpoint.position("shard-2"), None);
        assert!(!checkpoint.finished("shard-2"));
        assert_eq!(checkpoint.stream_arn(), Some(ARN));

        checkpoint.start_over("another stream");
        assert_eq!(checkpoint.stream_arn(), Some("another stream"));
        assert_eq!(checkpoint.position("shard-1"), None);
    }
}
