//! Server-side partition assignors of the consumer group protocol (KIP-848): `uniform` and
//! `range`. Both are pure functions from the members' subscriptions (and, for `uniform`, their
//! previous target assignment, to stay sticky) to a target assignment.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// A topic-partition as the consumer protocol names it: by topic id.
pub type Tp = (Uuid, i32);
pub type Assignment = BTreeSet<Tp>;

/// The subscribed topics that exist: name → (id, partition count).
pub type Topics = BTreeMap<String, (Uuid, i32)>;

/// What an assignor knows about a member.
pub struct AssignorMember<'a> {
    pub id: &'a str,
    pub topics: &'a BTreeSet<String>,
    /// The member's previous target assignment (sticky assignors keep what they can).
    pub previous: &'a Assignment,
}

pub const ASSIGNORS: &[&str] = &["uniform", "range"];

pub fn assign(
    name: &str,
    members: &[AssignorMember<'_>],
    topics: &Topics,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, topics),
        _ => uniform(members, topics),
    }
}

fn least_loaded<'a>(counts: &BTreeMap<&str, usize>, eligible: &[&'a str]) -> Option<&'a str> {
    eligible
        .iter()
        .min_by_key(|m| (counts.get(*m).copied().unwrap_or(0), **m))
        .copied()
}

/// Spreads every subscribed partition as evenly as the subscriptions allow, keeping partitions
/// with their previous owner where that does not unbalance the group.
pub fn uniform(members: &[AssignorMember<'_>], topics: &Topics) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_string(), Assignment::new()))
        .collect();
    // every partition of a subscribed topic, with the members allowed to own it
    let mut partitions: Vec<(Tp, Vec<&str>)> = Vec::new();
    for (name, (id, count)) in topics {
        let eligible: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(name))
            .map(|m| m.id)
            .collect();
        if eligible.is_empty() {
            continue;
        }
        for p in 0..*count {
            partitions.push(((*id, p), eligible.clone()));
        }
    }
    let mut owner: BTreeMap<Tp, &str> = BTreeMap::new();
    // 1. stickiness: a partition stays with its previous owner if that one still subscribes
    for (tp, eligible) in &partitions {
        if let Some(m) = members
            .iter()
            .find(|m| m.previous.contains(tp) && eligible.contains(&m.id))
        {
            owner.insert(*tp, m.id);
        }
    }
    let mut counts: BTreeMap<&str, usize> = members.iter().map(|m| (m.id, 0)).collect();
    for m in owner.values() {
        *counts.entry(m).or_default() += 1;
    }
    // 2. the rest go to the least loaded eligible member
    for (tp, eligible) in &partitions {
        if owner.contains_key(tp) {
            continue;
        }
        if let Some(m) = least_loaded(&counts, eligible) {
            owner.insert(*tp, m);
            *counts.entry(m).or_default() += 1;
        }
    }
    // 3. balance: move partitions from a member that has two more than an eligible other.
    // Every move lowers the sum of squared counts, so this ends.
    loop {
        let mut moved = false;
        for (tp, eligible) in &partitions {
            let current = owner[tp];
            let Some(to) = least_loaded(&counts, eligible) else {
                continue;
            };
            if counts[to] + 1 < counts[current] {
                owner.insert(*tp, to);
                *counts.get_mut(current).expect("owner counted") -= 1;
                *counts.get_mut(to).expect("eligible counted") += 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    for (tp, m) in owner {
        out.entry(m.to_string()).or_default().insert(tp);
    }
    out
}

/// Per topic, contiguous ranges of partitions to the subscribed members in member id order; the
/// first `partitions % members` members get one more.
pub fn range(members: &[AssignorMember<'_>], topics: &Topics) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_string(), Assignment::new()))
        .collect();
    for (name, (id, count)) in topics {
        let mut subscribed: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(name))
            .map(|m| m.id)
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        subscribed.sort_unstable();
        let n = subscribed.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subscribed.iter().enumerate() {
            let take = base + i32::from((i as i32) < extra);
            let set = out.entry(m.to_string()).or_default();
            for p in next..next + take {
                set.insert((*id, p));
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[(&str, i32)]) -> Topics {
        list.iter()
            .map(|(n, c)| (n.to_string(), (Uuid::new_v4(), *c)))
            .collect()
    }

    fn sizes(a: &BTreeMap<String, Assignment>) -> Vec<usize> {
        a.values().map(|s| s.len()).collect()
    }

    fn all(a: &BTreeMap<String, Assignment>) -> Vec<Tp> {
        let mut v: Vec<Tp> = a.values().flatten().copied().collect();
        v.sort();
        v
    }

    #[test]
    fn uniform_balances_and_is_sticky() {
        let t = topics(&[("a", 6)]);
        let subs: BTreeSet<String> = ["a".to_string()].into();
        let empty = Assignment::new();
        let three: Vec<AssignorMember> = ["m1", "m2", "m3"]
            .iter()
            .map(|id| AssignorMember {
                id,
                topics: &subs,
                previous: &empty,
            })
            .collect();
        let first = uniform(&three, &t);
        assert_eq!(sizes(&first), vec![2, 2, 2]);
        assert_eq!(all(&first).len(), 6, "every partition once");
        // a fourth member joins: sizes 2,2,1,1 and the old members keep what they can
        let mut four: Vec<AssignorMember> = three
            .iter()
            .map(|m| AssignorMember {
                id: m.id,
                topics: &subs,
                previous: &first[m.id],
            })
            .collect();
        four.push(AssignorMember {
            id: "m4",
            topics: &subs,
            previous: &empty,
        });
        let second = uniform(&four, &t);
        let mut s = sizes(&second);
        s.sort();
        assert_eq!(s, vec![1, 1, 2, 2]);
        assert_eq!(all(&second).len(), 6);
        for m in ["m1", "m2", "m3"] {
            assert!(second[m].is_subset(&first[m]), "{m} only lost partitions");
        }
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let t = topics(&[("a", 4), ("b", 2)]);
        let only_a: BTreeSet<String> = ["a".to_string()].into();
        let both: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let empty = Assignment::new();
        let members = [
            AssignorMember {
                id: "x",
                topics: &only_a,
                previous: &empty,
            },
            AssignorMember {
                id: "y",
                topics: &both,
                previous: &empty,
            },
        ];
        let a = uniform(&members, &t);
        let b_id = t["b"].0;
        assert!(a["x"].iter().all(|(id, _)| *id != b_id), "x never gets b");
        assert_eq!(sizes(&a), vec![3, 3]);
        assert_eq!(all(&a).len(), 6);
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let t = topics(&[("a", 5)]);
        let subs: BTreeSet<String> = ["a".to_string()].into();
        let empty = Assignment::new();
        let members: Vec<AssignorMember> = ["b", "a"]
            .iter()
            .map(|id| AssignorMember {
                id,
                topics: &subs,
                previous: &empty,
            })
            .collect();
        let r = range(&members, &t);
        let id = t["a"].0;
        assert_eq!(r["a"], [(id, 0), (id, 1), (id, 2)].into());
        assert_eq!(r["b"], [(id, 3), (id, 4)].into());
    }
}
