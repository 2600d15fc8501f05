//! KIP-227 incremental fetch sessions.
//!
//! A full fetch with epoch 0 opens a session holding the request's partitions; later requests
//! with the session id and the next epoch list only changed partitions (and forgotten ones), and
//! the response carries only partitions with news: records, an error, or a changed high
//! watermark, last stable offset or log start offset. Epoch -1 closes a session. At most
//! `max.incremental.fetch.session.cache.slots` sessions live; the least recently used goes first.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::time::Instant;

use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::metadata::MetadataImage;

/// Topic id → name for v13+ requests, name → id for older ones.
pub fn resolve(
    image: &crate::metadata::MetadataImage,
    version: i16,
    name: &TopicName,
    id: Uuid,
) -> (Option<String>, Uuid) {
    if version >= 13 {
        (image.topic_by_id(&id).map(|t| t.name.clone()), id)
    } else {
        let name = name.0.to_string();
        let id = image.topic(&name).map_or(Uuid::nil(), |t| t.id);
        (Some(name), id)
    }
}

const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

/// What a fetch response told the client of a partition besides records: (high watermark,
/// last stable offset, log start offset).
pub type SentState = (i64, i64, i64);

/// One partition of a fetch, with what was last sent for it.
#[derive(Debug, Clone)]
pub struct SessionPartition {
    pub topic_id: Uuid,
    /// The topic name, when known (None: unknown topic id). Shared: a session's partitions are
    /// copied out for every request.
    pub name: Option<std::sync::Arc<str>>,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    sent: Option<SentState>,
    /// The partition had nothing new for the client at this watcher version, fetch offset and
    /// leader epoch: while all three stay the same, a fetch need not read it again.
    quiet: Option<(u64, i64, i32)>,
    /// A follower's session: when the leader last recorded this follower's progress for the
    /// partition (a quiet partition needs it only now and then, for the ISR's lag check).
    pub progress_ms: i64,
}

impl SessionPartition {
    /// What a response tells the client about the partition, besides records.
    pub fn sent_state(data: &PartitionData) -> SentState {
        (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
        )
    }

    /// Whether `data` differs from what went out last time (an incremental response carries only
    /// such partitions).
    pub fn has_news(&self, data: &PartitionData, has_records: bool) -> bool {
        has_records || data.error_code != 0 || self.sent != Some(Self::sent_state(data))
    }

    /// Records what a response that is actually sent told the client.
    pub fn record_sent(&mut self, state: SentState) {
        self.sent = Some(state);
    }

    /// The watcher version at which the partition was known to have nothing new for the
    /// client, if its fetch state has not changed since.
    pub fn quiet_at(&self) -> Option<u64> {
        self.quiet
            .filter(|(_, offset, epoch)| {
                *offset == self.fetch_offset && *epoch == self.current_leader_epoch
            })
            .map(|(version, ..)| version)
    }

    /// The client now knows everything the partition had at `version` (a sent response
    /// carried no records and no error for it).
    pub fn record_quiet(&mut self, version: Option<u64>) {
        self.quiet = version.map(|v| (v, self.fetch_offset, self.current_leader_epoch));
    }

    pub fn name_or_empty(&self) -> String {
        self.name.as_deref().unwrap_or_default().to_string()
    }
}

struct Session {
    partitions: Vec<SessionPartition>,
    next_epoch: i32,
    last_used: Instant,
}

pub enum SessionOutcome {
    Error(ResponseError),
    Ready {
        session_id: i32,
        partitions: Vec<SessionPartition>,
        incremental: bool,
    },
}

pub struct FetchSessions {
    inner: Mutex<Inner>,
}

struct Inner {
    sessions: HashMap<i32, Session>,
    next_id: i32,
    capacity: usize,
}

impl FetchSessions {
    pub fn new(capacity: usize) -> FetchSessions {
        FetchSessions {
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                next_id: 1,
                capacity,
            }),
        }
    }

    pub fn len(&self) -> usize {
        crate::locks::lock(&self.inner).sessions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides which partitions this request covers and which session it belongs to.
    pub fn begin(
        &self,
        request: &FetchRequest,
        version: i16,
        image: &MetadataImage,
    ) -> SessionOutcome {
        let requested: Vec<SessionPartition> = request
            .topics
            .iter()
            .flat_map(|t| {
                let (name, id) = resolve(image, version, &t.topic, t.topic_id);
                let name: Option<std::sync::Arc<str>> = name.map(Into::into);
                t.partitions.iter().map(move |p| SessionPartition {
                    topic_id: id,
                    name: name.clone(),
                    partition: p.partition,
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: p.current_leader_epoch,
                    sent: None,
                    quiet: None,
                    progress_ms: 0,
                })
            })
            .collect();
        let full = |partitions| SessionOutcome::Ready {
            session_id: 0,
            partitions,
            incremental: false,
        };
        if version < 7 {
            return full(requested);
        }
        let mut inner = crate::locks::lock(&self.inner);
        match (request.session_id, request.session_epoch) {
            (0, FINAL_EPOCH) => full(requested),
            (id, FINAL_EPOCH) => {
                inner.sessions.remove(&id);
                full(requested)
            }
            (id, INITIAL_EPOCH) => {
                inner.sessions.remove(&id);
                let session_id = inner.create(requested.clone());
                SessionOutcome::Ready {
                    session_id,
                    partitions: requested,
                    incremental: false,
                }
            }
            (id, epoch) => {
                let Some(session) = inner.sessions.get_mut(&id) else {
                    return SessionOutcome::Error(ResponseError::FetchSessionIdNotFound);
                };
                if session.next_epoch != epoch {
                    return SessionOutcome::Error(ResponseError::InvalidFetchSessionEpoch);
                }
                session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
                session.last_used = Instant::now();
                for forgotten in &request.forgotten_topics_data {
                    let (name, topic_id) =
                        resolve(image, version, &forgotten.topic, forgotten.topic_id);
                    session.partitions.retain(|p| {
                        let same_topic = if version >= 13 {
                            p.topic_id == topic_id
                        } else {
                            p.name.as_deref() == name.as_deref()
                        };
                        !(same_topic && forgotten.partitions.contains(&p.partition))
                    });
                }
                for r in requested {
                    let existing = session.partitions.iter_mut().find(|p| {
                        p.partition == r.partition
                            && if version >= 13 {
                                p.topic_id == r.topic_id
                            } else {
                                p.name == r.name
                            }
                    });
                    match existing {
                        Some(p) => {
                            p.fetch_offset = r.fetch_offset;
                            p.max_bytes = r.max_bytes;
                            p.current_leader_epoch = r.current_leader_epoch;
                        }
                        None => session.partitions.push(r),
                    }
                }
                SessionOutcome::Ready {
                    session_id: id,
                    partitions: session.partitions.clone(),
                    incremental: true,
                }
            }
        }
    }

    /// Stores what was sent, for the next incremental request.
    pub fn finish(&self, session_id: i32, partitions: Vec<SessionPartition>) {
        if session_id == 0 {
            return;
        }
        let mut inner = crate::locks::lock(&self.inner);
        if let Some(session) = inner.sessions.get_mut(&session_id) {
            session.partitions = partitions;
            session.last_used = Instant::now();
        }
    }
}

impl Inner {
    /// A new session, or 0 (sessionless) when the cache has no room at all.
    fn create(&mut self, partitions: Vec<SessionPartition>) -> i32 {
        if self.capacity == 0 {
            return 0;
        }
        if self.sessions.len() >= self.capacity {
            if let Some((&oldest, _)) = self.sessions.iter().min_by_key(|(_, s)| s.last_used) {
                self.sessions.remove(&oldest);
            }
        }
        let mut id = self.next_id;
        while id == 0 || self.sessions.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        self.next_id = id.wrapping_add(1).max(1);
        self.sessions.insert(
            id,
            Session {
                partitions,
                next_epoch: 1,
                last_used: Instant::now(),
            },
        );
        id
    }
}
