//! Committed offsets as records of `__consumer_offsets`, in Kafka's format (so Kafka's tools can
//! read them): key version 1 `[int16 version][string group][string topic][int32 partition]`,
//! value version 3 `[int16 version][int64 offset][int32 leader epoch][string metadata]
//! [int64 commit timestamp]`, strings as int16 length + UTF-8. A null value deletes the offset.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::CommittedOffset;

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn get_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        return None;
    }
    String::from_utf8(buf.split_to(len as usize).to_vec()).ok()
}

pub fn key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

pub fn value(offset: &CommittedOffset) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    buf.put_i64(offset.offset);
    buf.put_i32(offset.leader_epoch);
    put_string(&mut buf, &offset.metadata);
    buf.put_i64(offset.commit_timestamp);
    buf.freeze()
}

/// (group, topic, partition) of an offset-commit key; `None` for other record kinds (group
/// metadata, version 2) or malformed keys.
pub fn parse_key(mut key: Bytes) -> Option<(String, String, i32)> {
    if key.remaining() < 2 || key.get_i16() > 1 {
        return None;
    }
    let group = get_string(&mut key)?;
    let topic = get_string(&mut key)?;
    (key.remaining() >= 4).then(|| (group, topic, key.get_i32()))
}

pub fn parse_value(mut value: Bytes) -> Option<CommittedOffset> {
    if value.remaining() < 2 {
        return None;
    }
    let version = value.get_i16();
    if value.remaining() < 8 {
        return None;
    }
    let offset = value.get_i64();
    let leader_epoch = if version >= 3 && value.remaining() >= 4 {
        value.get_i32()
    } else {
        -1
    };
    let metadata = get_string(&mut value)?;
    let commit_timestamp = if value.remaining() >= 8 {
        value.get_i64()
    } else {
        -1
    };
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let o = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1000,
        };
        assert_eq!(
            parse_key(key("g", "t", 7)),
            Some(("g".into(), "t".into(), 7))
        );
        assert_eq!(parse_value(value(&o)), Some(o));
        assert_eq!(parse_key(Bytes::from_static(&[0, 2, 0])), None);
    }
}
