//! Fleet-wide `max_concurrency` on the handle's side: admitting one request of a
//! provider whose `concurrency_scope` is `fleet` against the fleet's in-flight total,
//! publishing this replica's count when a request ends, and refreshing the published counts
//! while they last (a replica that stops refreshing stops counting after
//! [`IN_FLIGHT_TTL`]).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::SharedStateHandle;
use super::fleet::{FleetAdmit, FleetCounter, IN_FLIGHT_REFRESH, IN_FLIGHT_TTL};

/// At most one "falling back to the local limit" line per this interval.
const FALLBACK_LOG_EVERY: Duration = Duration::from_secs(10);

/// A fleet slot held by one request: this replica's count goes down (and is published)
/// when it is dropped.
#[derive(Debug)]
pub(crate) struct FleetSlot {
    handle: Weak<SharedStateHandle>,
    provider: String,
    counter: Arc<FleetCounter>,
}

impl Drop for FleetSlot {
    fn drop(&mut self) {
        self.counter.remove();
        let (Some(handle), Ok(runtime)) =
            (self.handle.upgrade(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let provider = std::mem::take(&mut self.provider);
        let counter = self.counter.clone();
        runtime.spawn(async move { handle.publish_count(&provider, &counter).await });
    }
}

impl SharedStateHandle {
    /// Admits one request of `provider` under the fleet-wide `limit`: `Ok(Some(slot))`
    /// admitted by the fleet, `Ok(None)` admitted under this replica's limit alone (the
    /// store is unreachable: logged), `Err(others)` refused (the other replicas hold
    /// `others`).
    pub(crate) async fn admit_in_flight(
        self: &Arc<Self>,
        provider: &str,
        limit: usize,
    ) -> Result<Option<FleetSlot>, u64> {
        let Some(counter) = self.fleet.of(provider) else {
            return Ok(None);
        };
        self.start_refresher();
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let answer = {
            // While the store is down and another call of this provider is waiting on it,
            // this request does not queue behind that call's timeout (a silent store
            // would make each request wait for all the earlier ones): it is admitted
            // under this replica's limit at once.
            let serial = counter.try_lock();
            if serial.is_none() && !self.is_up() {
                drop(serial);
                counter.add();
                return Ok(Some(self.fallback_slot(provider, limit, counter)));
            }
            let _serial = match serial {
                Some(serial) => serial,
                None => counter.lock().await,
            };
            let count = counter.held().saturating_add(1);
            let asked = self
                .state
                .admit(provider, &self.replica, count, limit, IN_FLIGHT_TTL);
            let answer = self.timed("concurrency", asked).await;
            if matches!(answer, Some(FleetAdmit::Admitted) | None) {
                counter.add();
            }
            answer
        };
        match answer {
            Some(FleetAdmit::Full { others }) => Err(others),
            Some(FleetAdmit::Admitted) => Ok(Some(FleetSlot {
                handle: Arc::downgrade(self),
                provider: provider.to_owned(),
                counter,
            })),
            None => Ok(Some(self.fallback_slot(provider, limit, counter))),
        }
    }

    /// The slot of a request admitted under this replica's limit alone (the store is
    /// unreachable; logged at most every [`FALLBACK_LOG_EVERY`]). It is counted, so the
    /// store learns of it once it answers again.
    fn fallback_slot(
        self: &Arc<Self>,
        provider: &str,
        limit: u64,
        counter: Arc<FleetCounter>,
    ) -> FleetSlot {
        if self.fleet.log_due(FALLBACK_LOG_EVERY) {
            tracing::warn!(
                provider,
                max_concurrency = limit,
                "shared state unreachable: fleet-wide max_concurrency falls back to this replica's limit"
            );
        }
        FleetSlot {
            handle: Arc::downgrade(self),
            provider: provider.to_owned(),
            counter,
        }
    }

    /// Publishes this replica's count of `provider` (read under the counter's lock, so the
    /// last write is the current count).
    async fn publish_count(&self, provider: &str, counter: &FleetCounter) {
        // While the store is down, a publish that would queue behind another call is
        // skipped: the refresher publishes the count again within IN_FLIGHT_REFRESH.
        let _serial = match counter.try_lock() {
            Some(serial) => serial,
            None if !self.is_up() => return,
            None => counter.lock().await,
        };
        let published =
            self.state
                .publish_in_flight(provider, &self.replica, counter.held(), IN_FLIGHT_TTL);
        self.timed("concurrency", published).await;
    }

    /// Starts (once) the task that republishes every count before its TTL ends; it stops
    /// when the handle is dropped.
    fn start_refresher(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.fleet.start_refresher() {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(IN_FLIGHT_REFRESH).await;
                let Some(handle) = weak.upgrade() else { break };
                for (provider, counter) in handle.fleet.all() {
                    handle.publish_count(&provider, &counter).await;
                }
            }
        });
    }
}
