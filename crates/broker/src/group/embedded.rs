//! The consumer protocol embedded in classic groups: a member's subscription (JoinGroup
//! metadata) and its assignment (SyncGroup bytes), each a version (i16) then the message. The
//! coordinator reads them only to move a group between the classic and the consumer protocol
//! (KIP-848 online migration), where partitions are named by topic id.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::assignor::{Assignment, Topics};

/// Highest versions ferrolog reads and writes (Kafka 4.1's).
const SUBSCRIPTION_MAX: i16 = 3;
const ASSIGNMENT_MAX: i16 = 3;

/// What a classic member's JoinGroup metadata says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscription {
    pub version: i16,
    pub topics: BTreeSet<String>,
    /// Partitions it still owns (version 1+; eager clients own none when they rejoin), by id;
    /// partitions of topics that no longer exist are left out.
    pub owned: Assignment,
    pub rack_id: Option<String>,
}

fn version_of(buf: &mut Bytes) -> Option<i16> {
    (buf.remaining() >= 2).then(|| buf.get_i16())
}

pub fn decode_subscription(metadata: &Bytes, topics: &Topics) -> Option<Subscription> {
    let mut buf = metadata.clone();
    let version = version_of(&mut buf)?;
    let s =
        ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, SUBSCRIPTION_MAX)).ok()?;
    let owned = s
        .owned_partitions
        .iter()
        .filter_map(|tp| topics.get(tp.topic.0.as_str()).map(|(id, _)| (*id, tp)))
        .flat_map(|(id, tp)| tp.partitions.iter().map(move |p| (id, *p)))
        .collect();
    Some(Subscription {
        version,
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned,
        rack_id: s.rack_id.map(|r| r.to_string()),
    })
}

/// A classic member's assignment, by topic id (unknown topics left out).
pub fn decode_assignment(bytes: &Bytes, topics: &Topics) -> Assignment {
    let mut buf = bytes.clone();
    let Some(version) = version_of(&mut buf) else {
        return Assignment::new();
    };
    let Ok(a) = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, ASSIGNMENT_MAX))
    else {
        return Assignment::new();
    };
    a.assigned_partitions
        .iter()
        .filter_map(|tp| topics.get(tp.topic.0.as_str()).map(|(id, _)| (*id, tp)))
        .flat_map(|(id, tp)| tp.partitions.iter().map(move |p| (id, *p)))
        .collect()
}

/// `assignment` as SyncGroup bytes at the version the member's subscription used.
pub fn encode_assignment(assignment: &Assignment, topics: &Topics, version: i16) -> Bytes {
    let version = version.clamp(0, ASSIGNMENT_MAX);
    let mut by_topic: Vec<AssignedTopic> = Vec::new();
    for (name, (id, _)) in topics {
        let partitions: Vec<i32> = assignment
            .range((*id, i32::MIN)..=(*id, i32::MAX))
            .map(|(_, p)| *p)
            .collect();
        if !partitions.is_empty() {
            by_topic.push(
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    let message = ConsumerProtocolAssignment::default().with_assigned_partitions(by_topic);
    let mut out = BytesMut::new();
    out.put_i16(version);
    if message.encode(&mut out, version).is_err() {
        // cannot happen for this message; an empty assignment is still well-formed
        return Bytes::from_static(&[0, 0, 0, 0, 0, 0, 255, 255, 255, 255]);
    }
    out.freeze()
}

/// The version of the subscription in a member's metadata (0 when unreadable).
pub fn subscription_version(metadata: &Bytes) -> i16 {
    let mut buf = metadata.clone();
    version_of(&mut buf).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;

    fn topics() -> Topics {
        [
            ("a".to_string(), (uuid::Uuid::from_u128(1), 3)),
            ("b".to_string(), (uuid::Uuid::from_u128(2), 2)),
        ]
        .into()
    }

    #[test]
    fn subscriptions_and_assignments_round_trip_by_topic_id() {
        let t = topics();
        let s = ConsumerProtocolSubscription::default()
            .with_topics(vec![
                StrBytes::from_static_str("a"),
                StrBytes::from_static_str("b"),
            ])
            .with_owned_partitions(vec![
                OwnedTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("a")))
                    .with_partitions(vec![0, 2]),
                OwnedTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("gone")))
                    .with_partitions(vec![0]),
            ]);
        let mut raw = BytesMut::new();
        raw.put_i16(1);
        s.encode(&mut raw, 1).unwrap();
        let decoded = decode_subscription(&raw.freeze(), &t).unwrap();
        assert_eq!(decoded.version, 1);
        assert_eq!(decoded.topics, ["a".to_string(), "b".to_string()].into());
        let a = uuid::Uuid::from_u128(1);
        assert_eq!(decoded.owned, [(a, 0), (a, 2)].into());

        let assignment: Assignment = [(a, 1), (uuid::Uuid::from_u128(2), 0)].into();
        let bytes = encode_assignment(&assignment, &t, 1);
        assert_eq!(decode_assignment(&bytes, &t), assignment);
        assert!(decode_assignment(&Bytes::from_static(&[0]), &t).is_empty());
    }
}
