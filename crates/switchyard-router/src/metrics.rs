//! Names of the metrics the router records through the [`metrics`](https://docs.rs/metrics)
//! facade. The binary installs the exporter; without one the calls cost next to nothing.
//!
//! Labels stay low-cardinality: route aliases and provider ids come from the config,
//! `target` labels from `label_of` (known models only, else `<provider>/other`),
//! outcomes and reasons are reason codes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::metrics::{Counter, Gauge, Histogram, SharedString};

/// Counter `{route, target, outcome}`: finished requests. `route` is the alias, or
/// `direct` for exact and bare model names; `target` is `provider/model` or `none`;
/// `outcome` is `ok`, `cancelled` or an error's reason code.
pub const REQUESTS_TOTAL: &str = "switchyard_requests_total";
/// Histogram `{target}`: seconds from dispatch to the first event of the serving target.
pub const TTFT_SECONDS: &str = "switchyard_ttft_seconds";
/// Histogram `{target}`: seconds from the start of routing to the end of the stream.
pub const REQUEST_DURATION_SECONDS: &str = "switchyard_request_duration_seconds";
/// Gauge `{provider}`: requests waiting for a slot.
pub const QUEUE_DEPTH: &str = "switchyard_queue_depth";
/// Gauge `{provider}`: requests holding a slot.
pub const IN_FLIGHT: &str = "switchyard_in_flight";
/// Counter `{reason}`: requests served by a target other than the first planned one: any
/// target after an earlier one failed (`fallback_after_<code>`, `overflow_queue_full`), or
/// a later step of the route (`fallback`, `overflow_queue_depth`, `cooling_last_resort`).
/// A retry that serves on the route's first step (`retry`) and a balanced group's pick are
/// not counted.
pub const FALLBACKS_TOTAL: &str = "switchyard_fallbacks_total";
/// Counter `{target, kind}`: tokens, `kind` = `prompt` or `completion`.
pub const TOKENS_TOTAL: &str = "switchyard_tokens_total";
/// `{provider}`: US dollars spent. Recorded as a gauge that only grows (the facade's
/// counters are integers); the ledger keeps the exact micro-dollar amounts.
pub const SPEND_USD_TOTAL: &str = "switchyard_spend_usd_total";
/// Gauge `{provider}`: 1 when the provider is up, 0 when down or cooling.
pub const PROVIDER_UP: &str = "switchyard_provider_up";
/// Counter `{caller}`: a caller's tool list shrank (a tool offered in most of its recent
/// requests disappeared). `caller` is the API key id, or `-` without one.
pub const TOOL_SET_SHRUNK_TOTAL: &str = "switchyard_tool_set_shrunk_total";
/// Counter `{caller}`: tool calls for a tool the request did not offer.
pub const UNKNOWN_TOOL_CALLS_TOTAL: &str = "switchyard_unknown_tool_calls_total";

/// Gauge: 1 while the shared state (`shared_state` in the config) answers, 0 while it is
/// unreachable. Absent without shared state.
pub const SHARED_STATE_UP: &str = "switchyard_shared_state_up";
/// Counter `{op}`: failed shared-state operations; `op` is `snapshot`, `charge`, `rate`,
/// `cool`, `ping`, `reconcile`, `concurrency` (fleet-wide `max_concurrency`) or `probe`
/// (shared health probes).
pub const SHARED_STATE_ERRORS_TOTAL: &str = "switchyard_shared_state_errors_total";
/// Counter: spend charges recorded while the shared state was unreachable and applied to
/// it once it answered again.
pub const SHARED_STATE_RECONCILED_TOTAL: &str = "switchyard_shared_state_reconciled_total";
/// Counter: spend charges the outage journal could not keep (it was full and dropped its
/// oldest, or writing it failed): they never reach the shared totals (the local ledger
/// still has them).
pub const SHARED_STATE_JOURNAL_DROPPED_TOTAL: &str =
    "switchyard_shared_state_journal_dropped_total";

/// Counter `{provider, source}`: health probe results applied; `source` is `own` (this
/// replica probed) or `shared` (another replica's fresh result, read from the shared state).
pub const HEALTH_PROBES_TOTAL: &str = "switchyard_health_probes_total";

/// How long a cached metric handle is used before it is looked up in the recorder again.
/// The exporter drops counter and histogram series that went without an update for its
/// idle timeout (an hour in the binary): a handle kept longer than that could count into a
/// dropped series, and a recorder installed later would never see it.
pub const HANDLE_TTL: Duration = Duration::from_secs(10);

/// A metric handle looked up at most once per [`HANDLE_TTL`] (10 s): the facade's macros
/// build a key, allocate its labels and hash it into the registry on every call. Keep one
/// per label set, e.g. in a `static`:
///
/// ```
/// use switchyard_router::metrics::CachedHandle;
///
/// static SERVED: CachedHandle<metrics::Counter> = CachedHandle::new();
/// SERVED.get(|| metrics::counter!("served_total")).increment(1);
/// ```
pub struct CachedHandle<T> {
    /// The handle and when it was made ([`crate::clock::coarse_monotonic_millis`]).
    slot: Mutex<Option<(u64, T)>>,
}

impl<T> Default for CachedHandle<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> CachedHandle<T> {
    /// An empty cache.
    pub const fn new() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }
}

impl<T: Clone> CachedHandle<T> {
    /// The handle, made by `make` when there is none or it is older than [`HANDLE_TTL`].
    /// Its age comes from the coarse clock (a tick's resolution, a sixth of a precise
    /// read's cost): a hit is paid on every request, and the TTL is seconds.
    pub fn get(&self, make: impl FnOnce() -> T) -> T {
        self.get_at(crate::clock::coarse_monotonic_millis(), make)
    }

    /// [`Self::get`] at `now_ms` on the coarse clock.
    fn get_at(&self, now_ms: u64, make: impl FnOnce() -> T) -> T {
        let Ok(mut slot) = self.slot.lock() else {
            return make();
        };
        match &*slot {
            Some((made_ms, handle)) if now_ms.saturating_sub(*made_ms) < HANDLE_TTL_MS => {
                handle.clone()
            }
            _ => {
                let handle = make();
                *slot = Some((now_ms, handle.clone()));
                handle
            }
        }
    }
}

/// [`HANDLE_TTL`] in milliseconds.
const HANDLE_TTL_MS: u64 = HANDLE_TTL.as_millis() as u64;

impl<T> std::fmt::Debug for CachedHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedHandle")
    }
}

/// A provider's gauges (`{provider}`), each handle cached.
#[derive(Debug)]
pub(crate) struct ProviderGauges {
    provider: SharedString,
    queue_depth: CachedHandle<Gauge>,
    in_flight: CachedHandle<Gauge>,
    up: CachedHandle<Gauge>,
    /// Orders each count's read with its gauge's update: two threads that read the count
    /// apart and then set it in the other order would leave the older figure standing.
    publishing: Mutex<()>,
}

impl ProviderGauges {
    pub(crate) fn new(provider: &str) -> Self {
        Self {
            provider: SharedString::from(Arc::<str>::from(provider)),
            queue_depth: CachedHandle::default(),
            in_flight: CachedHandle::default(),
            up: CachedHandle::default(),
            publishing: Mutex::new(()),
        }
    }

    fn gauge(&self, cache: &CachedHandle<Gauge>, name: &'static str) -> Gauge {
        cache.get(|| ::metrics::gauge!(name, "provider" => self.provider.clone()))
    }

    /// Sets the queue depth to what `read` says, `read` called under the publishing lock so
    /// that the last update made is from the last read (see [`Self::publish_in_flight`]).
    pub(crate) fn publish_queue_depth(&self, read: impl FnOnce() -> usize) {
        let gauge = self.gauge(&self.queue_depth, QUEUE_DEPTH);
        let _serial = self.publishing.lock();
        gauge.set(read() as f64);
    }

    /// Sets the in-flight gauge to what `read` says. Callers change the count first and
    /// publish after: under the lock, the last publish reads the count after every change
    /// before it, so the gauge settles on the true figure however updates race.
    pub(crate) fn publish_in_flight(&self, read: impl FnOnce() -> usize) {
        let gauge = self.gauge(&self.in_flight, IN_FLIGHT);
        let _serial = self.publishing.lock();
        gauge.set(read() as f64);
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.gauge(&self.up, PROVIDER_UP)
            .set(if up { 1.0 } else { 0.0 });
    }
}

/// The handles of one `target` label: time to first token, request duration, tokens.
#[derive(Debug)]
pub(crate) struct TargetMetrics {
    /// The label (see [`label_of`]).
    pub(crate) label: SharedString,
    pub(crate) ttft: Histogram,
    pub(crate) duration: Histogram,
    pub(crate) prompt_tokens: Counter,
    pub(crate) completion_tokens: Counter,
    /// `switchyard_requests_total{outcome="ok"}` of this target, by route label (at most
    /// [`MAX_CACHED_ROUTES`]; other outcomes are rare and looked up each time).
    requests_ok: Mutex<Vec<(Box<str>, Counter)>>,
}

/// Most route labels whose `ok` counters a [`TargetMetrics`] keeps (routes come from the
/// config; this is a backstop).
const MAX_CACHED_ROUTES: usize = 64;

impl TargetMetrics {
    fn new(label: SharedString) -> Self {
        Self {
            ttft: ::metrics::histogram!(TTFT_SECONDS, "target" => label.clone()),
            duration: ::metrics::histogram!(REQUEST_DURATION_SECONDS, "target" => label.clone()),
            prompt_tokens: ::metrics::counter!(TOKENS_TOTAL, "target" => label.clone(), "kind" => "prompt"),
            completion_tokens: ::metrics::counter!(TOKENS_TOTAL, "target" => label.clone(), "kind" => "completion"),
            requests_ok: Mutex::new(Vec::new()),
            label,
        }
    }

    /// Counts a request to `route` (its label: the alias or `direct`) that this target
    /// served to its end, in `switchyard_requests_total{route, target, outcome="ok"}`.
    pub(crate) fn count_ok(&self, route: &str) {
        let make = || {
            ::metrics::counter!(
                REQUESTS_TOTAL,
                "route" => route.to_owned(),
                "target" => self.label.clone(),
                "outcome" => "ok"
            )
        };
        let Ok(mut cached) = self.requests_ok.lock() else {
            make().increment(1);
            return;
        };
        if let Some((_, counter)) = cached.iter().find(|(r, _)| &**r == route) {
            counter.increment(1);
            return;
        }
        let counter = make();
        counter.increment(1);
        if cached.len() < MAX_CACHED_ROUTES {
            cached.push((route.into(), counter));
        }
    }
}

/// Most targets whose metric handles a router generation keeps (known models only, so
/// the config and the discovered catalogs bound it; this is a backstop).
const MAX_CACHED_TARGETS: usize = 4096;

/// The [`TargetMetrics`] of the targets a router generation served, by target.
#[derive(Debug, Default)]
pub(crate) struct TargetMetricsCache {
    targets: Mutex<
        HashMap<crate::TargetRef, (Instant, Arc<TargetMetrics>), foldhash::fast::RandomState>,
    >,
}

impl Clone for TargetMetricsCache {
    /// An empty cache (a copy of a generation looks its handles up again).
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl TargetMetricsCache {
    /// The handles for `target`: cached for a known model (refreshed after
    /// [`HANDLE_TTL`]), made afresh for any other (its label is `<provider>/other`).
    /// `now`: a clock read the caller made (the cache's age is measured to it).
    pub(crate) fn get(
        &self,
        inner: &crate::router::Inner,
        target: &crate::TargetRef,
        now: Instant,
    ) -> Arc<TargetMetrics> {
        if let Ok(targets) = self.targets.lock() {
            if let Some((made, metrics)) = targets.get(target) {
                if now.duration_since(*made) < HANDLE_TTL {
                    return Arc::clone(metrics);
                }
            }
        }
        let (label, known) = label_of(inner, target);
        let metrics = Arc::new(TargetMetrics::new(SharedString::from(Arc::<str>::from(
            label,
        ))));
        if known {
            if let Ok(mut targets) = self.targets.lock() {
                if targets.len() >= MAX_CACHED_TARGETS && !targets.contains_key(target) {
                    targets.clear();
                }
                targets.insert(target.clone(), (now, Arc::clone(&metrics)));
            }
        }
        metrics
    }
}

/// Longest `provider/model` written as a `target` label; longer ones become `<provider>/other`.
pub(crate) const MAX_TARGET_LABEL: usize = 128;

/// The `target` label for `target`, and whether it names the model: `provider/model`
/// when the model is one this generation knows (configured statically, named by a route,
/// or discovered) and the label is short and plain; `<provider>/other` otherwise, and
/// `other` for an unknown provider. Names a caller sends to an upstream that accepts
/// anything so never grow `/metrics`.
fn label_of(inner: &crate::router::Inner, target: &crate::TargetRef) -> (String, bool) {
    let Some(&index) = inner.by_id.get(&*target.provider) else {
        return ("other".to_owned(), false);
    };
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@+".contains(&b))
    };
    let known = || {
        inner
            .slots
            .get(index)
            .is_some_and(|s| s.offers(&target.model))
            || inner.routes.values().any(|r| {
                r.steps
                    .iter()
                    .flatten()
                    .any(|t| t.slot == index && t.model == target.model)
            })
    };
    if target.provider.len() + 1 + target.model.len() <= MAX_TARGET_LABEL
        && plain(&target.provider)
        && plain(&target.model)
        && known()
    {
        (target.to_string(), true)
    } else if plain(&target.provider) && target.provider.len() <= MAX_TARGET_LABEL {
        (format!("{}/other", target.provider), false)
    } else {
        ("other".to_owned(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// A recorder whose every gauge is one shared value (the test reads it back).
    struct OneGauge(Arc<AtomicU64>);

    impl metrics::Recorder for OneGauge {
        fn describe_counter(
            &self,
            _: ::metrics::KeyName,
            _: Option<metrics::Unit>,
            _: SharedString,
        ) {
        }
        fn describe_gauge(&self, _: ::metrics::KeyName, _: Option<metrics::Unit>, _: SharedString) {
        }
        fn describe_histogram(
            &self,
            _: ::metrics::KeyName,
            _: Option<metrics::Unit>,
            _: SharedString,
        ) {
        }
        fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> Counter {
            Counter::noop()
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.0.clone())
        }
        fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// Two requests of a provider finishing together on two threads must leave
    /// `switchyard_in_flight` at the true count. Each release read the count and then set
    /// the gauge, unordered against the other: a release that read 1 (the other request
    /// still busy) and set it after the other release had read 0 and set 0 left the gauge
    /// showing a request that no longer existed, until the provider's next request. Here the
    /// first publish stops between its read and its set while the second one runs.
    #[test]
    fn a_gauge_settles_on_the_last_read_when_publishes_race() {
        let value = Arc::new(AtomicU64::new(0));
        let gauges = Arc::new(ProviderGauges::new("p"));
        // The gauge's handle is looked up (and cached) under the test's recorder.
        metrics::with_local_recorder(&OneGauge(value.clone()), || gauges.publish_in_flight(|| 0));
        let count = Arc::new(AtomicUsize::new(1));
        let (read_tx, read_rx) = mpsc::channel();
        let (second_tx, second_rx) = mpsc::channel::<()>();
        let first = {
            let (gauges, count) = (gauges.clone(), count.clone());
            std::thread::spawn(move || {
                gauges.publish_in_flight(|| {
                    let seen = count.load(Ordering::Acquire);
                    read_tx.send(()).ok();
                    // Until the second publish is done, or long enough for it to be done
                    // if nothing holds it back.
                    second_rx.recv_timeout(Duration::from_millis(300)).ok();
                    seen
                });
            })
        };
        read_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        count.store(0, Ordering::Release);
        let second = {
            let (gauges, count) = (gauges.clone(), count.clone());
            std::thread::spawn(move || {
                gauges.publish_in_flight(|| count.load(Ordering::Acquire));
                second_tx.send(()).ok();
            })
        };
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(
            f64::from_bits(value.load(Ordering::Acquire)),
            0.0,
            "the gauge kept the older read"
        );
    }

    #[test]
    fn a_cached_handle_is_made_once_within_its_ttl() {
        let cache = CachedHandle::<u32>::default();
        let mut made = 0;
        for _ in 0..3 {
            let handle = cache.get(|| {
                made += 1;
                7
            });
            assert_eq!(handle, 7);
        }
        assert_eq!(made, 1);
    }

    #[test]
    fn a_cached_handle_is_made_again_after_its_ttl() {
        let cache = CachedHandle::<u32>::default();
        let mut made = 0;
        let mut get = |now_ms| {
            cache.get_at(now_ms, || {
                made += 1;
                made
            })
        };
        assert_eq!(get(1_000), 1);
        assert_eq!(get(1_000 + HANDLE_TTL_MS - 1), 1, "still fresh");
        assert_eq!(get(1_000 + HANDLE_TTL_MS), 2, "expired: made again");
        assert_eq!(get(1_000 + HANDLE_TTL_MS + 5), 2);
        // A clock read that went backwards (another thread's older read) keeps it.
        assert_eq!(get(900), 2);
    }
}
