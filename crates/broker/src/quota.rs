//! Client quotas and the rates behind them, as Kafka measures them: `quota.window.num` samples
//! of `quota.window.size.seconds` each, and a throttle time that brings the observed rate back
//! to the bound (KIP-219: the response says it, and the connection is not read meanwhile).
//!
//! Quotas are set per entity (`user`, `client-id`, both, or `ip`; a name of `None` is the
//! entity's default) by AlterClientQuotas and live in the metadata image. Which one applies to
//! a request follows Kafka's precedence: user + client-id, user + default client-id, user,
//! default user + client-id, default user + default client-id, default user, client-id, default
//! client-id. The entity that applies also says who shares a rate: a user's quota is shared by
//! all the user's clients, a default user's quota is had by each user on their own.
//!
//! Lock order: [`ClientQuotas`]'s sensor map is a leaf (held only to record or measure).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// A quota entity: entity type → name (`None`: the type's default).
pub type QuotaEntity = BTreeMap<String, Option<String>>;

/// Every entity's quotas (key → value).
pub type Quotas = BTreeMap<QuotaEntity, BTreeMap<String, f64>>;

/// Whether a quota key takes whole numbers (Kafka's LONG and INT keys) or any positive number.
fn integral(key: &str) -> Option<bool> {
    match key {
        PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE | CONNECTION_CREATION_RATE => Some(true),
        REQUEST_PERCENTAGE | CONTROLLER_MUTATION_RATE => Some(false),
        _ => None,
    }
}

/// Checks an entity's types and names, with Kafka's messages.
pub fn validate_entity(entity: &[(String, Option<String>)]) -> Result<QuotaEntity, String> {
    if entity.is_empty() {
        return Err("Invalid empty client quota entity".into());
    }
    let mut out = QuotaEntity::new();
    for (kind, name) in entity {
        if out.contains_key(kind) {
            return Err(format!(
                "Invalid client quota entity, duplicate entity entry {kind}"
            ));
        }
        if ![USER, CLIENT_ID, IP].contains(&kind.as_str()) {
            return Err(format!("Unhandled client quota entity type: {kind}"));
        }
        if name.as_deref() == Some("") {
            return Err(format!("Empty {kind} not supported"));
        }
        out.insert(kind.clone(), name.clone());
    }
    if out.contains_key(IP) {
        if out.len() > 1 {
            return Err("Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId".into());
        }
        if let Some(Some(ip)) = out.get(IP) {
            if ip.parse::<std::net::IpAddr>().is_err()
                && std::net::ToSocketAddrs::to_socket_addrs(&(ip.as_str(), 0)).is_err()
            {
                return Err(format!("{ip} is not a valid IP or resolvable host."));
            }
        }
    }
    Ok(out)
}

/// Checks a quota key and value for an (already validated) entity, with Kafka's messages.
pub fn validate_quota(entity: &QuotaEntity, key: &str, value: f64) -> Result<(), String> {
    let ip = entity.contains_key(IP);
    let allowed = match key {
        CONNECTION_CREATION_RATE => ip,
        _ => !ip && integral(key).is_some(),
    };
    if !allowed {
        return Err(format!("Invalid configuration key {key}"));
    }
    if !value.is_finite() {
        return Err(format!("Quota {key} must be a finite number"));
    }
    if value <= 0.0 {
        return Err(format!("Quota {key} must be greater than 0"));
    }
    if key == REQUEST_PERCENTAGE {
        return Err(format!(
            "ferrolog does not enforce {key} quotas yet (producer_byte_rate, consumer_byte_rate, controller_mutation_rate and connection_creation_rate it does)"
        ));
    }
    if integral(key) == Some(true) {
        let too_large = if key == CONNECTION_CREATION_RATE {
            value > f64::from(i32::MAX)
        } else {
            value > i64::MAX as f64
        };
        if too_large {
            let kind = if key == CONNECTION_CREATION_RATE {
                "an INT"
            } else {
                "a LONG"
            };
            return Err(format!("Proposed value for {key} is too large for {kind}."));
        }
        if (value % 1.0).abs() > 1e-6 {
            return Err(format!("{key} cannot be a fractional value."));
        }
    }
    Ok(())
}

/// Who shares a rate: the (user, client-id) of the entity that applied, "" for a type the
/// entity does not have.
pub type SensorKey = (&'static str, String, String);

/// The quota for `key` that applies to `user` and `client_id` by Kafka's precedence, and who
/// shares its rate.
pub fn applicable(
    quotas: &Quotas,
    key: &'static str,
    user: &str,
    client_id: &str,
) -> Option<(f64, SensorKey)> {
    // the common case, on every produce and fetch: no quota of this kind at all
    if !quotas.values().any(|q| q.contains_key(key)) {
        return None;
    }
    let named = |v: &str| Some(v.to_string());
    let candidates: [&[(&str, Option<String>)]; 8] = [
        &[(USER, named(user)), (CLIENT_ID, named(client_id))],
        &[(USER, named(user)), (CLIENT_ID, None)],
        &[(USER, named(user))],
        &[(USER, None), (CLIENT_ID, named(client_id))],
        &[(USER, None), (CLIENT_ID, None)],
        &[(USER, None)],
        &[(CLIENT_ID, named(client_id))],
        &[(CLIENT_ID, None)],
    ];
    for candidate in candidates {
        let entity: QuotaEntity = candidate
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if let Some(value) = quotas.get(&entity).and_then(|q| q.get(key)) {
            let has = |t: &str| entity.contains_key(t);
            let sensor = (
                key,
                if has(USER) {
                    user.to_string()
                } else {
                    String::new()
                },
                if has(CLIENT_ID) {
                    client_id.to_string()
                } else {
                    String::new()
                },
            );
            return Some((*value, sensor));
        }
    }
    None
}

/// The `connection_creation_rate` of an address: its own entity, else the default IP entity.
pub fn ip_connection_rate(quotas: &Quotas, ip: std::net::IpAddr) -> Option<f64> {
    let entity = |name: Option<String>| QuotaEntity::from([(IP.to_string(), name)]);
    let own = quotas.iter().find(|(e, _)| {
        e.len() == 1
            && e.get(IP).is_some_and(|n| {
                n.as_deref().is_some_and(|n| {
                    n.parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.to_canonical() == ip.to_canonical())
                })
            })
    });
    own.map(|(_, q)| q)
        .or_else(|| quotas.get(&entity(None)))
        .and_then(|q| q.get(CONNECTION_CREATION_RATE))
        .copied()
}

/// A throttle in whole milliseconds, rounded up: the client waits the time the response says,
/// and must not come back a fraction of a millisecond early (it would be over its quota still).
fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000).min(u128::from(u64::MAX)) as u64)
}

/// The client quotas in force and the rates of whoever they apply to.
pub struct ClientQuotas {
    quotas: std::sync::RwLock<std::sync::Arc<Quotas>>,
    sensors: std::sync::Mutex<HashMap<SensorKey, (Rate, Instant)>>,
    sampling: Sampling,
}

/// Sensors not used for this long are forgotten (bounds the map under many clients).
const SENSOR_IDLE: Duration = Duration::from_secs(600);

impl ClientQuotas {
    pub fn new(sampling: Sampling) -> ClientQuotas {
        ClientQuotas {
            quotas: Default::default(),
            sensors: Default::default(),
            sampling,
        }
    }

    /// Swaps in the quotas of a new metadata image.
    pub fn set(&self, quotas: &Quotas) {
        let mut current = crate::locks::write(&self.quotas);
        if **current != *quotas {
            *current = std::sync::Arc::new(quotas.clone());
        }
    }

    pub fn quotas(&self) -> std::sync::Arc<Quotas> {
        crate::locks::read(&self.quotas).clone()
    }

    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// Runs `f` on the rate of whoever shares `key`'s quota with this client (created if new),
    /// with the bound and the time; `None` when no quota applies.
    fn with_sensor<T>(
        &self,
        key: &'static str,
        user: &str,
        client_id: &str,
        f: impl FnOnce(&mut Rate, f64, Instant) -> T,
    ) -> Option<T> {
        let (bound, sensor) = applicable(&self.quotas(), key, user, client_id)?;
        let now = Instant::now();
        let mut sensors = crate::locks::lock(&self.sensors);
        if sensors.len() > 10_000 {
            sensors.retain(|_, (_, used)| now.duration_since(*used) < SENSOR_IDLE);
        }
        let (rate, used) = sensors
            .entry(sensor)
            .or_insert_with(|| (Rate::new(self.sampling), now));
        *used = now;
        Some(f(rate, bound, now))
    }

    /// Records `amount` against `key`'s quota for this client and answers how long it must be
    /// throttled (zero without a quota, or within it).
    pub fn record(&self, key: &'static str, user: &str, client_id: &str, amount: f64) -> Duration {
        self.with_sensor(key, user, client_id, |rate, bound, now| {
            rate.record(amount, now);
            whole_ms(rate.throttle(bound, now))
        })
        .unwrap_or_default()
    }

    /// Records `amount` unless the client is over `key`'s quota already (then records nothing
    /// and answers false), in one step, so that two concurrent requests cannot both slip in.
    pub fn record_unless_over(
        &self,
        key: &'static str,
        user: &str,
        client_id: &str,
        amount: f64,
    ) -> bool {
        self.with_sensor(key, user, client_id, |rate, bound, now| {
            let over = !rate.throttle(bound, now).is_zero();
            if !over {
                rate.record(amount, now);
            }
            !over
        })
        .unwrap_or(true)
    }

    /// How long the client would be throttled now, recording nothing.
    pub fn pending(&self, key: &'static str, user: &str, client_id: &str) -> Duration {
        self.with_sensor(key, user, client_id, |rate, bound, now| {
            whole_ms(rate.throttle(bound, now))
        })
        .unwrap_or_default()
    }

    /// The most one response may carry under `key`'s quota: a rate's worth over the measuring
    /// span (Kafka's `getMaxValueInQuotaWindow`); `None` without a quota.
    pub fn window_worth(&self, key: &'static str, user: &str, client_id: &str) -> Option<f64> {
        let (bound, _) = applicable(&self.quotas(), key, user, client_id)?;
        Some(bound * (self.sampling.samples.max(2) - 1) as f64 * self.sampling.window.as_secs_f64())
    }
}

/// The longest throttle ever asked for.
const MAX_THROTTLE: Duration = Duration::from_secs(86_400);

/// How rates are sampled (`quota.window.num` × `quota.window.size.seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    pub samples: usize,
    pub window: Duration,
}

impl Default for Sampling {
    /// Kafka's defaults: 11 windows of a second.
    fn default() -> Sampling {
        Sampling {
            samples: 11,
            window: Duration::from_secs(1),
        }
    }
}

/// A rate over the last `samples` windows.
#[derive(Debug)]
pub struct Rate {
    sampling: Sampling,
    /// (start of the window, what was recorded in it), oldest first.
    windows: Vec<(Instant, f64)>,
}

impl Rate {
    pub fn new(sampling: Sampling) -> Rate {
        Rate {
            sampling: Sampling {
                samples: sampling.samples.max(2),
                window: sampling.window.max(Duration::from_millis(1)),
            },
            windows: Vec::new(),
        }
    }

    /// Forgets windows that ended more than `samples` windows ago.
    fn purge(&mut self, now: Instant) {
        let span = self.sampling.window * self.sampling.samples as u32;
        self.windows
            .retain(|(start, _)| now.saturating_duration_since(*start) < span);
    }

    pub fn record(&mut self, amount: f64, now: Instant) {
        self.purge(now);
        match self.windows.last_mut() {
            Some((start, value))
                if now.saturating_duration_since(*start) < self.sampling.window =>
            {
                *value += amount
            }
            _ => self.windows.push((now, amount)),
        }
    }

    /// The span the rate is measured over: since the oldest window started, plus the whole
    /// windows missing to `samples - 1` of them, so that a first burst is not measured over a
    /// few milliseconds and waiting still lowers the rate (Kafka's `Rate.windowSize`).
    fn span(&self, now: Instant) -> Duration {
        let elapsed = self.windows.first().map_or(Duration::ZERO, |(start, _)| {
            now.saturating_duration_since(*start)
        });
        let window = self.sampling.window;
        let full = (elapsed.as_nanos() / window.as_nanos().max(1)) as u32;
        let least = self.sampling.samples as u32 - 1;
        elapsed + window * least.saturating_sub(full)
    }

    /// The rate per second.
    pub fn measure(&mut self, now: Instant) -> f64 {
        self.purge(now);
        let total: f64 = self.windows.iter().map(|(_, v)| v).sum();
        total / self.span(now).as_secs_f64()
    }

    /// How long to hold back so that the rate falls to `bound` per second (zero when it is not
    /// above it): (rate − bound) / bound × the measured span, as Kafka's quotas compute it.
    pub fn throttle(&mut self, bound: f64, now: Instant) -> Duration {
        let rate = self.measure(now);
        if bound.is_nan() || bound <= 0.0 || rate <= bound {
            return Duration::ZERO;
        }
        // a bound far below the rate asks for a very long wait: at most a day
        let seconds = self.span(now).as_secs_f64() * ((rate - bound) / bound);
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(MAX_THROTTLE)
            .min(MAX_THROTTLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parts: &[(&str, Option<&str>)]) -> QuotaEntity {
        parts
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn the_most_specific_entity_applies_and_says_who_shares_the_rate() {
        let mut q = Quotas::new();
        let set = |q: &mut Quotas, e: &[(&str, Option<&str>)], v: f64| {
            q.entry(entity(e))
                .or_default()
                .insert(PRODUCER_BYTE_RATE.into(), v);
        };
        set(&mut q, &[(CLIENT_ID, None)], 1.0);
        set(&mut q, &[(CLIENT_ID, Some("app"))], 2.0);
        set(&mut q, &[(USER, None)], 3.0);
        set(&mut q, &[(USER, Some("alice"))], 4.0);
        set(
            &mut q,
            &[(USER, Some("alice")), (CLIENT_ID, Some("app"))],
            5.0,
        );
        let k = PRODUCER_BYTE_RATE;
        let s = |u: &str, c: &str| (k, u.to_string(), c.to_string());
        assert_eq!(
            applicable(&q, k, "alice", "app"),
            Some((5.0, s("alice", "app")))
        );
        assert_eq!(
            applicable(&q, k, "alice", "other"),
            Some((4.0, s("alice", "")))
        );
        assert_eq!(applicable(&q, k, "bob", "app"), Some((3.0, s("bob", ""))));
        assert_eq!(applicable(&q, CONSUMER_BYTE_RATE, "bob", "app"), None);
        q.remove(&entity(&[(USER, None)]));
        assert_eq!(applicable(&q, k, "bob", "app"), Some((2.0, s("", "app"))));
        assert_eq!(applicable(&q, k, "bob", "x"), Some((1.0, s("", "x"))));
    }

    #[test]
    fn entities_and_values_are_checked_as_kafka_checks_them() {
        let e = |parts: &[(&str, Option<&str>)]| {
            validate_entity(
                &parts
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                    .collect::<Vec<_>>(),
            )
        };
        assert!(e(&[]).unwrap_err().contains("empty"));
        assert!(e(&[(USER, Some("a")), (USER, Some("b"))])
            .unwrap_err()
            .contains("duplicate"));
        assert!(e(&[("group", Some("a"))])
            .unwrap_err()
            .contains("Unhandled"));
        assert!(e(&[(IP, Some("1.2.3.4")), (USER, None)])
            .unwrap_err()
            .contains("IP entity"));
        assert!(e(&[(IP, Some("not a host"))])
            .unwrap_err()
            .contains("not a valid IP"));
        let user = e(&[(USER, None), (CLIENT_ID, Some("c"))]).unwrap();
        let ip = e(&[(IP, None)]).unwrap();
        assert!(validate_quota(&user, PRODUCER_BYTE_RATE, 1024.0).is_ok());
        assert!(validate_quota(&user, REQUEST_PERCENTAGE, 12.5)
            .unwrap_err()
            .contains("does not enforce"));
        assert!(validate_quota(&user, CONTROLLER_MUTATION_RATE, 12.5).is_ok());
        assert!(validate_quota(&user, PRODUCER_BYTE_RATE, 1.5)
            .unwrap_err()
            .contains("fractional"));
        assert!(validate_quota(&user, CONNECTION_CREATION_RATE, 5.0).is_err());
        assert!(validate_quota(&ip, CONNECTION_CREATION_RATE, 5.0).is_ok());
        assert!(validate_quota(&ip, PRODUCER_BYTE_RATE, 5.0).is_err());
        assert!(validate_quota(&user, CONSUMER_BYTE_RATE, 0.0)
            .unwrap_err()
            .contains("greater than 0"));
        for hostile in [f64::NAN, f64::INFINITY] {
            assert!(validate_quota(&user, CONTROLLER_MUTATION_RATE, hostile)
                .unwrap_err()
                .contains("finite"));
        }
        // a tiny bound asks for a long wait, never an overflow
        let mut rate = Rate::new(Sampling::default());
        rate.record(1e12, Instant::now());
        assert_eq!(rate.throttle(1e-300, Instant::now()), MAX_THROTTLE);
    }

    #[test]
    fn a_client_above_its_quota_is_throttled_and_one_within_it_is_not() {
        let quotas = ClientQuotas::new(Sampling::default());
        let mut q = Quotas::new();
        q.entry(entity(&[(CLIENT_ID, Some("fast"))]))
            .or_default()
            .insert(PRODUCER_BYTE_RATE.into(), 1000.0);
        quotas.set(&q);
        // 10,000 bytes within 10 s is 1000/s: at the bound
        assert_eq!(
            quotas.record(PRODUCER_BYTE_RATE, "u", "fast", 10_000.0),
            Duration::ZERO
        );
        // 20,000: twice the bound, 10 s more
        assert_eq!(
            quotas.record(PRODUCER_BYTE_RATE, "u", "fast", 10_000.0),
            Duration::from_secs(10)
        );
        assert_eq!(
            quotas.pending(PRODUCER_BYTE_RATE, "u", "fast"),
            Duration::from_secs(10)
        );
        assert_eq!(
            quotas.record(PRODUCER_BYTE_RATE, "u", "slow", 1e9),
            Duration::ZERO
        );
        assert_eq!(
            quotas.window_worth(PRODUCER_BYTE_RATE, "u", "fast"),
            Some(10_000.0)
        );
    }

    #[test]
    fn a_burst_is_measured_over_the_whole_window_and_throttled_back_to_the_bound() {
        let mut rate = Rate::new(Sampling::default());
        let t = Instant::now();
        for _ in 0..20 {
            rate.record(1.0, t);
        }
        // 20 over 10 s (no whole window has passed: ten are added)
        assert!((rate.measure(t) - 2.0).abs() < 1e-9);
        assert_eq!(rate.throttle(2.0, t), Duration::ZERO);
        // a bound of 1/s: (2 - 1) / 1 × 10 s
        assert_eq!(rate.throttle(1.0, t), Duration::from_secs(10));
    }

    #[test]
    fn waiting_lowers_the_rate_even_before_the_windows_fill() {
        let mut rate = Rate::new(Sampling::default());
        let t = Instant::now();
        rate.record(100.0, t);
        // 2.5 s later: 2 whole windows passed, 8 added: 10.5 s
        let later = t + Duration::from_millis(2500);
        assert!((rate.measure(later) - 100.0 / 10.5).abs() < 1e-9);
        assert!(rate.measure(later) < rate.measure(t + Duration::from_millis(100)));
    }

    #[test]
    fn old_windows_stop_counting() {
        let mut rate = Rate::new(Sampling {
            samples: 3,
            window: Duration::from_millis(100),
        });
        let t = Instant::now();
        rate.record(10.0, t);
        rate.record(10.0, t + Duration::from_millis(150));
        assert!(rate.measure(t + Duration::from_millis(150)) > 0.0);
        assert_eq!(rate.measure(t + Duration::from_millis(500)), 0.0);
    }
}
