//! Logging a failure that repeats (a peer that is down, a controller that does not answer):
//! once when it starts, at a bounded rate while it lasts (with how often it happened), and once
//! when it ends, instead of a line per retry.

use std::time::Duration;

use tokio::time::Instant;

/// How often a lasting failure is logged again.
pub const REPEAT_EVERY: Duration = Duration::from_secs(30);

/// One kind of repeating failure, e.g. the heartbeats to the controller.
#[derive(Debug)]
pub struct Repeating {
    what: String,
    /// Since when it has been failing, and how often since it was last logged.
    since: Option<Instant>,
    last_logged: Option<Instant>,
    unlogged: u64,
    every: Duration,
}

/// What [`Repeating`] says for one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Nothing to log.
    Quiet,
    /// The failure began.
    Started,
    /// Still failing: this many more times since the last line.
    Lasting(u64),
    /// It works again after failing for this long.
    Ended(Duration),
}

impl Repeating {
    pub fn new(what: impl Into<String>) -> Repeating {
        Repeating::every(what, REPEAT_EVERY)
    }

    pub fn every(what: impl Into<String>, every: Duration) -> Repeating {
        Repeating {
            what: what.into(),
            since: None,
            last_logged: None,
            unlogged: 0,
            every,
        }
    }

    /// Whether it is failing now.
    pub fn is_failing(&self) -> bool {
        self.since.is_some()
    }

    /// Records a failure at `now`; says what to log.
    pub fn note_failure(&mut self, now: Instant) -> Line {
        if self.since.is_none() {
            self.since = Some(now);
            self.last_logged = Some(now);
            self.unlogged = 0;
            return Line::Started;
        }
        self.unlogged += 1;
        if self
            .last_logged
            .is_none_or(|l| now.duration_since(l) >= self.every)
        {
            self.last_logged = Some(now);
            return Line::Lasting(std::mem::take(&mut self.unlogged));
        }
        Line::Quiet
    }

    /// Records a success at `now`; says what to log.
    pub fn note_success(&mut self, now: Instant) -> Line {
        match self.since.take() {
            Some(since) => {
                self.unlogged = 0;
                Line::Ended(now.duration_since(since))
            }
            None => Line::Quiet,
        }
    }

    /// A failure: logged as a warning when it starts and at a bounded rate after.
    pub fn failed(&mut self, error: &str) {
        match self.note_failure(Instant::now()) {
            Line::Started => tracing::warn!("{} failing: {error}", self.what),
            Line::Lasting(n) => tracing::warn!(
                "{} still failing ({n} more times in {:?}): {error}",
                self.what,
                self.every
            ),
            Line::Quiet | Line::Ended(_) => {}
        }
    }

    /// A success: logged if it ends a failure.
    pub fn succeeded(&mut self) {
        if let Line::Ended(d) = self.note_success(Instant::now()) {
            tracing::info!("{} works again after {:.1} s", self.what, d.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_failure_is_logged_at_its_start_at_a_bounded_rate_and_at_its_end() {
        let mut r = Repeating::every("x", Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(r.note_success(t0), Line::Quiet);
        assert_eq!(r.note_failure(t0), Line::Started);
        let mut lines = 0;
        // a retry every 10 ms for 35 s
        for ms in (10..35_000).step_by(10) {
            match r.note_failure(t0 + Duration::from_millis(ms)) {
                Line::Quiet => {}
                Line::Lasting(n) => {
                    lines += 1;
                    assert!(n >= 999, "{n}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(lines, 3, "one line per 10 s");
        assert!(r.is_failing());
        assert_eq!(
            r.note_success(t0 + Duration::from_secs(36)),
            Line::Ended(Duration::from_secs(36))
        );
        assert!(!r.is_failing());
        assert_eq!(
            r.note_failure(t0 + Duration::from_secs(37)),
            Line::Started,
            "a new failure is a new start"
        );
    }
}
