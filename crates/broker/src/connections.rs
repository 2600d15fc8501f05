//! Connection limits, with Kafka's semantics (its `ConnectionQuotas`):
//! - `max.connections.per.ip` / `max.connections.per.ip.overrides`: a connection from an
//!   address that already has its maximum is closed at once, after accept.
//! - `max.connections` (broker-wide) and `listener.name.<l>.max.connections`: the listener
//!   stops accepting until a connection closes (the new connection waits in the backlog).
//!   The inter-broker listener is protected from the broker-wide limit when there are other
//!   listeners, so a client flood cannot lock the other brokers out.
//! - `max.connection.creation.rate` (broker-wide, not on the protected listener) and
//!   `listener.name.<l>.max.connection.creation.rate`: accepting is delayed until the rate of
//!   new connections, measured over `quota.window.num` × `quota.window.size.seconds`, is back
//!   at the limit (at most one window).
//!
//! The controller listener is served by the quorum, apart: none of this counts it.
//!
//! Lock order: [`ConnectionLimits`]'s one mutex, never held across an await.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::quota::{Rate, Sampling};

pub const MAX_CONNECTIONS: &str = "max.connections";
pub const MAX_PER_IP: &str = "max.connections.per.ip";
pub const PER_IP_OVERRIDES: &str = "max.connections.per.ip.overrides";
pub const CREATION_RATE: &str = "max.connection.creation.rate";

/// The limits in force, from the effective broker config.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_connections: u32,
    pub per_ip: u32,
    pub per_ip_overrides: HashMap<IpAddr, u32>,
    pub creation_rate: u32,
    /// Per listener: `listener.name.<l>.max.connections` and `….max.connection.creation.rate`.
    pub listener_max: HashMap<String, u32>,
    pub listener_rate: HashMap<String, u32>,
    /// The inter-broker listener, protected from the broker-wide limits when it is not the
    /// only listener.
    pub protected: Option<String>,
    pub sampling: Sampling,
}

/// A count setting (absent or empty: no limit).
pub fn count(value: Option<&String>, name: &str) -> Result<u32> {
    match value.map(|v| v.trim()) {
        None | Some("") => Ok(u32::MAX),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n.min(i64::from(u32::MAX)) as u32),
            _ => bail!("Invalid value {v} for configuration {name}: Value must be at least 0"),
        },
    }
}

/// Parses `max.connections.per.ip.overrides` (`host:count,ip:count`); a host name stands for
/// every address it resolves to.
pub fn parse_overrides(value: &str) -> Result<HashMap<IpAddr, u32>> {
    let mut overrides = HashMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            anyhow::anyhow!(
                "Invalid value {value} for configuration {PER_IP_OVERRIDES}: entries must be host:count or ip:count, separated by commas"
            )
        };
        let (host, n) = entry.rsplit_once(':').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "Invalid value {value} for configuration {PER_IP_OVERRIDES}: cannot resolve {host}: {e}"
                    )
                })?
                .map(|a| a.ip())
                .collect(),
        };
        for ip in addresses {
            overrides.insert(ip, n);
        }
    }
    Ok(overrides)
}

/// Checks a connection limit's value (`key` is the key without a listener prefix, `name` as
/// it was given), with Kafka's message on failure; other keys pass.
pub fn validate(key: &str, name: &str, value: &str) -> Result<()> {
    match key {
        MAX_CONNECTIONS | MAX_PER_IP | CREATION_RATE => {
            count(Some(&value.to_string()), name).map(|_| ())
        }
        PER_IP_OVERRIDES => parse_overrides(value).map(|_| ()),
        _ => Ok(()),
    }
}

impl Limits {
    fn per_ip(&self, ip: IpAddr) -> u32 {
        self.per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.per_ip)
    }

    fn is_protected(&self, listener: &str) -> bool {
        self.protected.as_deref() == Some(listener)
    }
}

#[derive(Default)]
struct Counts {
    per_ip: HashMap<IpAddr, u32>,
    per_listener: HashMap<String, u32>,
    /// Connections of the listeners the broker-wide limit applies to.
    total: u32,
    broker_rate: Option<Rate>,
    listener_rate: HashMap<String, Rate>,
    /// Per address, for `connection_creation_rate` quotas.
    ip_rate: HashMap<IpAddr, Rate>,
}

/// Counts connections and enforces [`Limits`].
pub struct ConnectionLimits {
    limits: Mutex<Arc<Limits>>,
    counts: Mutex<Counts>,
    /// Woken when a connection closes or the limits change.
    freed: tokio::sync::Notify,
}

/// Why a new connection is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The address already has its maximum (`max.connections.per.ip`): closed at once.
    TooMany { ip: IpAddr, max: u32 },
    /// The address opens connections faster than its `connection_creation_rate` quota: closed
    /// after this delay (Kafka holds such a socket for the throttle time, then closes it).
    Throttled { ip: IpAddr, delay: Duration },
}

/// A counted connection: dropping it gives the slot back.
pub struct Permit {
    limits: Arc<ConnectionLimits>,
    listener: String,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.release(&self.listener, self.ip);
    }
}

impl ConnectionLimits {
    pub fn new(limits: Limits) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            limits: Mutex::new(Arc::new(limits)),
            counts: Mutex::new(Counts::default()),
            freed: tokio::sync::Notify::new(),
        })
    }

    /// Swaps in new limits (a dynamic config changed); waiting listeners look again.
    pub fn set(&self, limits: Limits) {
        let mut current = crate::locks::lock(&self.limits);
        if **current != limits {
            *current = Arc::new(limits);
            drop(current);
            self.freed.notify_waiters();
        }
    }

    pub fn limits(&self) -> Arc<Limits> {
        crate::locks::lock(&self.limits).clone()
    }

    /// The open connections from `ip`.
    pub fn from_address(&self, ip: IpAddr) -> u32 {
        crate::locks::lock(&self.counts)
            .per_ip
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }

    /// Admits a connection just accepted on `listener` from `ip`: refuses it if `ip` is above
    /// its `connection_creation_rate` quota (`ip_rate`, per second), waits while the listener
    /// or the broker is at its maximum or above its creation rate, then counts it, unless `ip`
    /// already has its maximum.
    pub async fn admit(
        self: &Arc<Self>,
        listener: &str,
        ip: IpAddr,
        ip_rate: Option<f64>,
    ) -> std::result::Result<Permit, Refused> {
        if let Some(bound) = ip_rate {
            let delay = self.record_ip_creation(ip, bound, Instant::now());
            if !delay.is_zero() {
                return Err(Refused::Throttled { ip, delay });
            }
        }
        let mut delay_until = self.record_creation(listener, Instant::now());
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let now = Instant::now();
            if delay_until.is_none_or(|until| now >= until) {
                if let Some(admitted) = self.take_slot(listener, ip) {
                    return admitted;
                }
                freed.await;
            } else if let Some(until) = delay_until {
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => delay_until = None,
                    _ = &mut freed => {}
                }
            }
        }
    }

    /// Counts the connection if the listener and the broker have a slot (`None`: they have
    /// not), unless `ip` already has its maximum.
    fn take_slot(
        self: &Arc<Self>,
        listener: &str,
        ip: IpAddr,
    ) -> Option<std::result::Result<Permit, Refused>> {
        let limits = self.limits();
        let mut counts = crate::locks::lock(&self.counts);
        let protected = limits.is_protected(listener);
        let on_listener = counts.per_listener.get(listener).copied().unwrap_or(0);
        let listener_max = limits
            .listener_max
            .get(listener)
            .copied()
            .unwrap_or(u32::MAX);
        if on_listener >= listener_max || (!protected && counts.total >= limits.max_connections) {
            return None;
        }
        let max = limits.per_ip(ip);
        if counts.per_ip.get(&ip).copied().unwrap_or(0) >= max {
            return Some(Err(Refused::TooMany { ip, max }));
        }
        *counts.per_ip.entry(ip).or_default() += 1;
        *counts.per_listener.entry(listener.to_string()).or_default() += 1;
        if !protected {
            counts.total += 1;
        }
        Some(Ok(Permit {
            limits: self.clone(),
            listener: listener.to_string(),
            ip,
        }))
    }

    /// Records a connection from `ip` in its creation rate; a connection above `bound` is not
    /// counted (it will not be served) and gets the delay before it is closed, at most a window.
    fn record_ip_creation(&self, ip: IpAddr, bound: f64, now: Instant) -> Duration {
        let sampling = self.limits().sampling;
        let mut counts = crate::locks::lock(&self.counts);
        if counts.ip_rate.len() > 10_000 {
            counts.ip_rate.retain(|_, r| r.measure(now) > 0.0);
        }
        let rate = counts
            .ip_rate
            .entry(ip)
            .or_insert_with(|| Rate::new(sampling));
        rate.record(1.0, now);
        let delay = rate.throttle(bound, now);
        if !delay.is_zero() {
            rate.record(-1.0, now);
        }
        delay.min(sampling.window)
    }

    /// Records a new connection in the creation rates; until when accepting it waits.
    fn record_creation(&self, listener: &str, now: Instant) -> Option<Instant> {
        let limits = self.limits();
        let mut counts = crate::locks::lock(&self.counts);
        let mut delay = Duration::ZERO;
        if !limits.is_protected(listener) && limits.creation_rate != u32::MAX {
            let rate = counts
                .broker_rate
                .get_or_insert_with(|| Rate::new(limits.sampling));
            rate.record(1.0, now);
            delay = delay.max(rate.throttle(f64::from(limits.creation_rate), now));
        }
        if let Some(bound) = limits
            .listener_rate
            .get(listener)
            .filter(|b| **b != u32::MAX)
        {
            let rate = counts
                .listener_rate
                .entry(listener.to_string())
                .or_insert_with(|| Rate::new(limits.sampling));
            rate.record(1.0, now);
            delay = delay.max(rate.throttle(f64::from(*bound), now));
        }
        // at most one window, as Kafka bounds a connection's delay
        let delay = delay.min(limits.sampling.window);
        (!delay.is_zero()).then_some(now + delay)
    }

    fn release(&self, listener: &str, ip: IpAddr) {
        let protected = self.limits().is_protected(listener);
        let mut counts = crate::locks::lock(&self.counts);
        if let Some(n) = counts.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
        if let Some(n) = counts.per_listener.get_mut(listener) {
            *n = n.saturating_sub(1);
        }
        if !protected {
            counts.total = counts.total.saturating_sub(1);
        }
        drop(counts);
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: u32::MAX,
            per_ip: u32::MAX,
            per_ip_overrides: HashMap::new(),
            creation_rate: u32::MAX,
            listener_max: HashMap::new(),
            listener_rate: HashMap::new(),
            protected: None,
            sampling: Sampling::default(),
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[tokio::test]
    async fn an_address_at_its_maximum_is_refused_and_others_are_not() {
        let c = ConnectionLimits::new(Limits {
            per_ip: 2,
            per_ip_overrides: [(B, 3)].into(),
            ..limits()
        });
        let a1 = c.admit("PLAINTEXT", A, None).await.unwrap();
        let _a2 = c.admit("PLAINTEXT", A, None).await.unwrap();
        assert_eq!(
            c.admit("PLAINTEXT", A, None).await.err(),
            Some(Refused::TooMany { ip: A, max: 2 })
        );
        let _b: Vec<_> = [
            c.admit("PLAINTEXT", B, None).await.unwrap(),
            c.admit("PLAINTEXT", B, None).await.unwrap(),
            c.admit("PLAINTEXT", B, None).await.unwrap(),
        ]
        .into();
        assert!(
            c.admit("PLAINTEXT", B, None).await.is_err(),
            "B's override is 3"
        );
        drop(a1);
        assert_eq!(c.from_address(A), 1);
        c.admit("PLAINTEXT", A, None)
            .await
            .expect("a slot came free");
    }

    #[tokio::test]
    async fn at_the_broker_maximum_accepting_waits_for_a_close_except_on_the_protected_listener() {
        let c = ConnectionLimits::new(Limits {
            max_connections: 1,
            protected: Some("REPLICATION".into()),
            ..limits()
        });
        let first = c.admit("CLIENTS", A, None).await.unwrap();
        let _inter = tokio::time::timeout(Duration::from_secs(1), c.admit("REPLICATION", B, None))
            .await
            .expect("the inter-broker listener is not held back")
            .unwrap();
        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.admit("CLIENTS", B, None).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "waits while the broker is full");
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("admitted once a connection closed")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_listener_maximum_holds_only_its_listener_and_a_raised_limit_frees_it() {
        let c = ConnectionLimits::new(Limits {
            listener_max: [("CLIENTS".to_string(), 1)].into(),
            ..limits()
        });
        let _first = c.admit("CLIENTS", A, None).await.unwrap();
        let _other = c.admit("OTHER", A, None).await.unwrap();
        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.admit("CLIENTS", B, None).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        c.set(limits());
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("admitted once the limit went")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn above_the_creation_rate_accepting_is_delayed() {
        let c = ConnectionLimits::new(Limits {
            creation_rate: 10,
            sampling: Sampling {
                samples: 2,
                window: Duration::from_millis(200),
            },
            ..limits()
        });
        // 10/s measured over (at least) 200 ms: the third connection is above it
        c.admit("CLIENTS", A, None).await.unwrap();
        let started = Instant::now();
        for _ in 0..3 {
            c.admit("CLIENTS", A, None).await.unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn an_address_above_its_creation_rate_is_refused_with_a_delay() {
        let c = ConnectionLimits::new(limits());
        // 2 per second over (at least) 10 s: 20 connections are within it
        for _ in 0..20 {
            c.admit("CLIENTS", A, Some(2.0)).await.unwrap();
        }
        match c.admit("CLIENTS", A, Some(2.0)).await {
            Err(Refused::Throttled { ip, delay }) => {
                assert_eq!(ip, A);
                assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1));
            }
            _ => panic!("the 21st is above the rate"),
        }
        c.admit("CLIENTS", B, Some(2.0))
            .await
            .expect("another address has its own rate");
    }

    #[test]
    fn overrides_parse_hosts_and_addresses_and_refuse_garbage() {
        let o = parse_overrides("10.0.0.1:5, localhost:7").unwrap();
        assert_eq!(o[&A], 5);
        assert_eq!(o[&IpAddr::from([127, 0, 0, 1])], 7);
        assert!(parse_overrides("").unwrap().is_empty());
        let e = parse_overrides("10.0.0.1").unwrap_err().to_string();
        assert!(e.contains(PER_IP_OVERRIDES), "{e}");
    }
}
