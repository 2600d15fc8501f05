//! Durable Raft state of one controller, under `<log.dir>/__cluster_metadata-raft/`:
//! `vote.json`, `committed.json`, `log.jsonl` (one entry per line, fsynced before Raft is told)
//! and `snapshot.json` (the image at some log id). The state machine is the [`MetadataImage`];
//! it is rebuilt at start from the snapshot and the committed entries after it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{BufRead, Cursor};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use ferrolog_storage::fs::{self, Open, StorageFile};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Outcome, TypeConfig};
use crate::metadata::MetadataImage;

type StorageResult<T> = Result<T, StorageError<u64>>;

use fs::write_atomically;

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match read_if_exists(path)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

fn read_if_exists(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match fs::get().read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Serialize, Deserialize)]
enum LogLine {
    Entry(Entry<TypeConfig>),
    Purged(LogId<u64>),
}

struct LogInner {
    dir: PathBuf,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    last_purged: Option<LogId<u64>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    /// `log.jsonl`, appended at `len`.
    file: Arc<dyn StorageFile>,
    len: u64,
}

impl LogInner {
    /// Rewrites `log.jsonl` from memory (after a truncation or a purge).
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut text = Vec::new();
        if let Some(p) = self.last_purged {
            serde_json::to_writer(&mut text, &LogLine::Purged(p))?;
            text.push(b'\n');
        }
        for e in self.entries.values() {
            serde_json::to_writer(&mut text, &LogLine::Entry(e.clone()))?;
            text.push(b'\n');
        }
        let path = self.dir.join("log.jsonl");
        write_atomically(&path, &text)?;
        self.file = fs::get().open(&path, Open::ReadWrite)?;
        self.len = text.len() as u64;
        Ok(())
    }
}

/// The Raft log (cheap to clone: every clone is the same log).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

impl LogStore {
    /// Opens the log; `true` if this controller has never voted nor logged anything.
    pub fn open(dir: &Path) -> Result<(LogStore, bool)> {
        for stray in fs::get().read_dir(dir)? {
            if stray.extension().is_some_and(|e| e == "tmp") {
                fs::get().remove_file(&stray)?; // an atomic write a crash interrupted
            }
        }
        let path = dir.join("log.jsonl");
        let mut entries = BTreeMap::new();
        let mut last_purged = None;
        let mut valid_len = 0u64;
        if let Some(bytes) = read_if_exists(&path)? {
            let mut reader = Cursor::new(bytes);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line)?;
                if n == 0 || !line.ends_with('\n') {
                    break; // end, or a torn last line from a crash
                }
                match serde_json::from_str::<LogLine>(&line) {
                    Ok(LogLine::Entry(e)) => {
                        entries.insert(e.log_id.index, e);
                    }
                    Ok(LogLine::Purged(p)) => last_purged = Some(p),
                    Err(e) => {
                        tracing::warn!("metadata raft log: dropping a damaged tail: {e}");
                        break;
                    }
                }
                valid_len += n as u64;
            }
        }
        let file = fs::get().open(&path, Open::ReadWrite)?;
        file.set_len(valid_len)?;
        let vote: Option<Vote<u64>> = read_json(&dir.join("vote.json"))?;
        let committed = read_json(&dir.join("committed.json"))?;
        let fresh = vote.is_none() && entries.is_empty() && last_purged.is_none();
        Ok((
            LogStore {
                inner: Arc::new(Mutex::new(LogInner {
                    dir: dir.to_path_buf(),
                    vote,
                    committed,
                    last_purged,
                    entries,
                    file,
                    len: valid_len,
                })),
            },
            fresh,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        crate::locks::lock(&self.inner)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let inner = self.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StorageResult<()> {
        let mut inner = self.lock();
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        write_atomically(&inner.dir.join("vote.json"), &bytes)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<u64>>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        let mut inner = self.lock();
        let bytes = serde_json::to_vec(&committed).map_err(|e| StorageIOError::write(&e))?;
        write_atomically(&inner.dir.join("committed.json"), &bytes)
            .map_err(|e| StorageIOError::write(&e))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let mut text = Vec::new();
        let mut added = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut text, &LogLine::Entry(e.clone()))
                .map_err(|e| StorageIOError::write_logs(&e))?;
            text.push(b'\n');
            added.push(e);
        }
        let written = inner
            .file
            .write_all_at(&text, inner.len)
            .and_then(|_| inner.file.sync_data());
        if written.is_ok() {
            inner.len += text.len() as u64;
        }
        if let Err(e) = &written {
            let err = StorageIOError::write_logs(e);
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return Err(err.into());
        }
        for e in added {
            inner.entries.insert(e.log_id.index, e);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        let mut inner = self.lock();
        inner.entries.split_off(&log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        let mut inner = self.lock();
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        inner.last_purged = Some(log_id);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    image: MetadataImage,
}

struct SmInner {
    dir: PathBuf,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    image: MetadataImage,
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
}

/// The metadata image as Raft's state machine; every applied entry publishes a new image.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<SmInner>>,
    publish: Arc<watch::Sender<Arc<MetadataImage>>>,
}

impl StateMachine {
    pub fn open(dir: &Path) -> Result<(StateMachine, watch::Receiver<Arc<MetadataImage>>)> {
        let stored: Option<StoredSnapshot> = read_json(&dir.join("snapshot.json"))?;
        let mut inner = SmInner {
            dir: dir.to_path_buf(),
            last_applied: None,
            membership: StoredMembership::default(),
            image: MetadataImage::default(),
            snapshot: None,
        };
        if let Some(s) = stored {
            inner.last_applied = s.meta.last_log_id;
            inner.membership = s.meta.last_membership.clone();
            inner.snapshot = Some((s.meta.clone(), serde_json::to_vec(&s)?));
            inner.image = s.image;
        }
        let (tx, rx) = watch::channel(Arc::new(inner.image.clone()));
        Ok((
            StateMachine {
                inner: Arc::new(Mutex::new(inner)),
                publish: Arc::new(tx),
            },
            rx,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SmInner> {
        crate::locks::lock(&self.inner)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let mut inner = self.lock();
        let meta = SnapshotMeta {
            last_log_id: inner.last_applied,
            last_membership: inner.membership.clone(),
            snapshot_id: format!(
                "{}",
                inner.last_applied.map(|l| l.index).unwrap_or_default()
            ),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image: inner.image.clone(),
        };
        let bytes =
            serde_json::to_vec(&stored).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        write_atomically(&inner.dir.join("snapshot.json"), &bytes)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        inner.snapshot = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>)> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Outcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let mut outcomes = Vec::new();
        for entry in entries {
            inner.last_applied = Some(entry.log_id);
            // records replay knowing their own index (a registration remembers it)
            inner.image.applied = entry.log_id.index;
            let mut outcome = Outcome {
                accepted: Vec::new(),
                index: entry.log_id.index,
            };
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(proposal) => {
                    outcome.accepted = proposal
                        .records
                        .iter()
                        .map(|r| inner.image.replay(r))
                        .collect();
                }
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            outcomes.push(outcome);
        }
        self.publish.send_replace(Arc::new(inner.image.clone()));
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let bytes = snapshot.into_inner();
        let stored: StoredSnapshot =
            serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let mut inner = self.lock();
        write_atomically(&inner.dir.join("snapshot.json"), &bytes)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.image = stored.image;
        inner.image.applied = meta.last_log_id.map(|l| l.index).unwrap_or_default();
        inner.snapshot = Some((meta.clone(), bytes));
        self.publish.send_replace(Arc::new(inner.image.clone()));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(self.lock().snapshot.clone().map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
