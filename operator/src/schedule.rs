//! When a check runs next.
//!
//! Why these rules: a result must follow the spec the user applied, so a new generation runs at
//! once; `kubectl pvtapi check NAME` sets the `pvtapi.io/run-now` annotation to a new value and
//! expects a run at once; otherwise checks run every `intervalSeconds`, spread by a jitter of up
//! to a tenth of the interval so a thousand checks created by one `kubectl apply` do not start a
//! thousand probe pods in the same second. The jitter is derived from the check's uid and last
//! run, not from a random source, so it is stable across operator restarts and testable.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Longest annotation value remembered in `status.lastRunNow`; longer values are compared by
/// this prefix.
pub const MAX_RUN_NOW_CHARS: usize = 256;

/// Why a run starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The check never had a result.
    FirstRun,
    /// `metadata.generation` moved past the generation of the last result.
    SpecChanged,
    /// `pvtapi.io/run-now` has a value not acted on yet.
    RunNow(String),
    /// The interval (plus jitter) has passed.
    Due,
}

impl Trigger {
    /// Bounded label / log spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::FirstRun => "FirstRun",
            Trigger::SpecChanged => "SpecChanged",
            Trigger::RunNow(_) => "RunNow",
            Trigger::Due => "Due",
        }
    }
}

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Run(Trigger),
    WaitUntil(Timestamp),
}

/// What the schedule depends on.
#[derive(Clone, Debug, Default)]
pub struct ScheduleInput<'a> {
    pub uid: &'a str,
    pub generation: Option<i64>,
    /// `status.observedGeneration`: the generation of the last result.
    pub observed_generation: Option<i64>,
    pub run_now: Option<&'a str>,
    pub last_run_now: Option<&'a str>,
    pub last_run_time: Option<Timestamp>,
    pub interval: Duration,
}

/// The run-now value as remembered (bounded).
pub fn run_now_value(annotation: &str) -> String {
    annotation.chars().take(MAX_RUN_NOW_CHARS).collect()
}

/// A new run-now request: a non-empty value different from the last one acted on.
pub fn pending_run_now(run_now: Option<&str>, last_run_now: Option<&str>) -> Option<String> {
    let value = run_now_value(run_now?.trim());
    (!value.is_empty() && Some(value.as_str()) != last_run_now).then_some(value)
}

/// Up to a tenth of `interval`, fixed for a given check and last run.
pub fn jitter(uid: &str, last_run_time: Option<Timestamp>, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut h);
    last_run_time.map(|t| t.as_second()).hash(&mut h);
    let span_ms = u64::try_from(interval.as_millis() / 10).unwrap_or(u64::MAX);
    if span_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(h.finish() % span_ms)
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d).ok().and_then(|d| t.checked_add(d).ok()).unwrap_or(Timestamp::MAX)
}

/// When the next periodic run is due, given the last one.
pub fn next_run_time(input: &ScheduleInput<'_>, last_run_time: Timestamp) -> Timestamp {
    plus(last_run_time, input.interval + jitter(input.uid, Some(last_run_time), input.interval))
}

/// Decides whether to start a run now. Call only when no run is in flight.
pub fn decide(input: &ScheduleInput<'_>, now: Timestamp) -> Decision {
    let Some(last) = input.last_run_time else {
        return Decision::Run(Trigger::FirstRun);
    };
    if input.generation.is_some() && input.generation != input.observed_generation {
        return Decision::Run(Trigger::SpecChanged);
    }
    if let Some(value) = pending_run_now(input.run_now, input.last_run_now) {
        return Decision::Run(Trigger::RunNow(value));
    }
    let due = next_run_time(input, last);
    if now >= due { Decision::Run(Trigger::Due) } else { Decision::WaitUntil(due) }
}

/// How long to wait until `t` (zero when past).
pub fn until(now: Timestamp, t: Timestamp) -> Duration {
    let d = t.duration_since(now);
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// A run id: the start time in milliseconds, base 36 (short, sortable for a given length,
/// valid in names and labels).
pub fn run_id(now: Timestamp) -> String {
    let mut n = u64::try_from(now.as_millisecond()).unwrap_or(0);
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn input<'a>() -> ScheduleInput<'a> {
        ScheduleInput {
            uid: "5f0c-uid",
            generation: Some(2),
            observed_generation: Some(2),
            run_now: None,
            last_run_now: None,
            last_run_time: Some(ts("2026-12-03T10:00:00Z")),
            interval: Duration::from_secs(300),
        }
    }

    #[test]
    fn decisions_follow_the_rules_in_order() {
        let now = ts("2026-12-03T10:01:00Z");
        assert_eq!(decide(&ScheduleInput { last_run_time: None, ..input() }, now), Decision::Run(Trigger::FirstRun));
        assert_eq!(decide(&ScheduleInput { generation: Some(3), ..input() }, now), Decision::Run(Trigger::SpecChanged));
        assert_eq!(
            decide(&ScheduleInput { run_now: Some("2026-12-03T10:00:59Z"), ..input() }, now),
            Decision::Run(Trigger::RunNow("2026-12-03T10:00:59Z".into()))
        );
        // The same value again is not a new request; neither is an empty one.
        assert!(matches!(
            decide(&ScheduleInput { run_now: Some("a"), last_run_now: Some("a"), ..input() }, now),
            Decision::WaitUntil(_)
        ));
        assert!(matches!(decide(&ScheduleInput { run_now: Some("  "), ..input() }, now), Decision::WaitUntil(_)));
        // Not due: wait until interval + jitter.
        let Decision::WaitUntil(t) = decide(&input(), now) else { panic!("wait") };
        let base = ts("2026-12-03T10:05:00Z");
        assert!(t >= base && t < ts("2026-12-03T10:05:30Z"), "{t}");
        assert_eq!(decide(&input(), t), Decision::Run(Trigger::Due));
    }

    #[test]
    fn jitter_is_bounded_stable_and_spreads_checks() {
        let interval = Duration::from_secs(300);
        let last = Some(ts("2026-12-03T10:00:00Z"));
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let uid = format!("uid-{i}");
            let j = jitter(&uid, last, interval);
            assert!(j < Duration::from_secs(30), "{j:?}");
            assert_eq!(j, jitter(&uid, last, interval), "stable");
            seen.insert(j.as_secs());
        }
        assert!(seen.len() > 20, "spread over the window: {seen:?}");
        assert_eq!(jitter("x", None, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn run_now_values_are_bounded() {
        let long = "x".repeat(1000);
        let v = pending_run_now(Some(&long), None).expect("new");
        assert_eq!(v.len(), MAX_RUN_NOW_CHARS);
        assert_eq!(pending_run_now(Some(&long), Some(&v)), None, "the remembered prefix matches");
    }

    #[test]
    fn run_ids_are_short_label_safe_and_ordered() {
        let a = run_id(ts("2026-12-03T10:00:00Z"));
        let b = run_id(ts("2026-12-03T10:00:00.001Z"));
        assert_eq!(a.len(), b.len());
        assert!(a < b);
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(until(ts("2026-12-03T10:00:10Z"), ts("2026-12-03T10:00:00Z")), Duration::ZERO);
        assert_eq!(until(ts("2026-12-03T10:00:00Z"), ts("2026-12-03T10:00:10Z")), Duration::from_secs(10));
    }
}
