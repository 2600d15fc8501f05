//! KIP-227 incremental fetch sessions.
//!
//! A full fetch with epoch 0 opens a session holding the request's partitions; later requests
//! with the session id and the next epoch list only changed partitions (and forgotten ones), and
//! the response carries only partitions with news: records, an error, or a changed high
//! watermark, last stable offset or log start offset. Epoch -1 closes a session. At most
//! `max.incremental.fetch.session.cache.slots` sessions live; the least recently used goes first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::handlers::fetch::resolve;
use crate::metadata::MetadataImage;

const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

/// One partition of a fetch, with what was last sent for it.
#[derive(Debug, Clone)]
pub struct SessionPartition {
    pub topic_id: Uuid,
    /// The topic name, when known (None: unknown topic id).
    pub name: Option<String>,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    sent: Option<(i64, i64, i64)>,
}

impl SessionPartition {
    /// What a response tells the client about the partition, besides records.
    pub fn sent_state(data: &PartitionData) -> (i64, i64, i64) {
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
    pub fn record_sent(&mut self, state: (i64, i64, i64)) {
        self.sent = Some(state);
    }

    pub fn name_or_empty(&self) -> String {
        self.name.clone().unwrap_or_default()
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
        self.inner.lock().expect("sessions lock").sessions.len()
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
                t.partitions.iter().map(move |p| SessionPartition {
                    topic_id: id,
                    name: name.clone(),
                    partition: p.partition,
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: p.current_leader_epoch,
                    sent: None,
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
        let mut inner = self.inner.lock().expect("sessions lock");
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
                            p.name == name
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
    pub fn finish(&self, session_id: i32, partitions: &[SessionPartition]) {
        if session_id == 0 {
            return;
        }
        let mut inner = self.inner.lock().expect("sessions lock");
        if let Some(session) = inner.sessions.get_mut(&session_id) {
            session.partitions = partitions.to_vec();
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
