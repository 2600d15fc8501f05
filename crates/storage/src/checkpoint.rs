//! Kafka's text checkpoint files, written atomically (write temp, fsync, rename).
//!
//! Offset checkpoints (`recovery-point-offset-checkpoint`, `replication-offset-checkpoint`,
//! `log-start-offset-checkpoint`):
//!
//! ```text
//! 0                 <- version
//! 2                 <- entry count
//! orders 0 1500     <- topic partition offset
//! orders 1 1432
//! ```
//!
//! `leader-epoch-checkpoint` has the same shape with `epoch start_offset` entries.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::fs;

/// Writes `contents` durably and atomically (see `fs::write_atomically`).
pub fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    fs::write_atomically(path, contents.as_bytes())
}

fn parse_lines(contents: &str) -> Option<Vec<Vec<&str>>> {
    let mut lines = contents.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let entries: Vec<Vec<&str>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    (entries.len() == count).then_some(entries)
}

/// (topic, partition) → offset
pub type OffsetCheckpoint = BTreeMap<(String, i32), i64>;

pub fn read_offsets(path: &Path) -> io::Result<OffsetCheckpoint> {
    let contents = match fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed checkpoint {}", path.display()),
        )
    };
    let mut map = BTreeMap::new();
    for entry in parse_lines(&contents).ok_or_else(bad)? {
        if entry.len() != 3 {
            return Err(bad());
        }
        let partition = entry[1].parse().map_err(|_| bad())?;
        let offset = entry[2].parse().map_err(|_| bad())?;
        map.insert((entry[0].to_string(), partition), offset);
    }
    Ok(map)
}

pub fn write_offsets(path: &Path, offsets: &OffsetCheckpoint) -> io::Result<()> {
    let mut out = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        out.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomic(path, &out)
}

pub fn read_epochs(path: &Path) -> io::Result<Vec<(i32, i64)>> {
    let contents = match fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed checkpoint {}", path.display()),
        )
    };
    let mut out = Vec::new();
    for entry in parse_lines(&contents).ok_or_else(bad)? {
        if entry.len() != 2 {
            return Err(bad());
        }
        out.push((
            entry[0].parse().map_err(|_| bad())?,
            entry[1].parse().map_err(|_| bad())?,
        ));
    }
    Ok(out)
}

pub fn write_epochs(path: &Path, epochs: &[(i32, i64)]) -> io::Result<()> {
    let mut out = format!("0\n{}\n", epochs.len());
    for (epoch, offset) in epochs {
        out.push_str(&format!("{epoch} {offset}\n"));
    }
    write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn offsets_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let mut map = OffsetCheckpoint::new();
        map.insert(("orders".into(), 0), 1500);
        map.insert(("orders".into(), 1), 1432);
        write_offsets(&path, &map).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\norders 0 1500\norders 1 1432\n"
        );
        assert_eq!(read_offsets(&path).unwrap(), map);
        fs::write(&path, "0\n3\norders 0 1\n").unwrap();
        assert!(read_offsets(&path).is_err());
    }
}
