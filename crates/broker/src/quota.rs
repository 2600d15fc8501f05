//! Rates measured the way Kafka's quotas measure them: `quota.window.num` samples of
//! `quota.window.size.seconds` each, and a throttle time that brings the observed rate back to
//! the bound within one measuring window. Connection creation rates use it (`connections.rs`).

use std::time::{Duration, Instant};

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

    /// The span the rate is measured over: since the oldest window started, but at least
    /// `samples - 1` whole windows, so that a first burst is not measured over a few
    /// milliseconds (Kafka's `Rate.windowSize`).
    fn span(&self, now: Instant) -> Duration {
        let elapsed = self.windows.first().map_or(Duration::ZERO, |(start, _)| {
            now.saturating_duration_since(*start)
        });
        elapsed.max(self.sampling.window * (self.sampling.samples as u32 - 1))
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
        if bound <= 0.0 || rate <= bound {
            return Duration::ZERO;
        }
        self.span(now).mul_f64((rate - bound) / bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_measured_over_the_whole_window_and_throttled_back_to_the_bound() {
        let mut rate = Rate::new(Sampling::default());
        let t = Instant::now();
        for _ in 0..20 {
            rate.record(1.0, t);
        }
        // 20 over at least 10 s: 2 per second
        assert!((rate.measure(t) - 2.0).abs() < 1e-9);
        assert_eq!(rate.throttle(2.0, t), Duration::ZERO);
        // a bound of 1/s: (2 - 1) / 1 × 10 s
        assert_eq!(rate.throttle(1.0, t), Duration::from_secs(10));
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
