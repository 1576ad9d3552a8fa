//! Helpers shared by the switchyard-redis integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::SystemTime;

use switchyard_router::{BudgetWindow, SharedState, SpendCharge, SpendCounter};

/// A charge of `micro` micro-dollars now, with id `id`.
pub(crate) fn charge(id: &str, caller: Option<&str>, micro: u64) -> SpendCharge {
    SpendCharge {
        charge_id: id.to_owned(),
        caller: caller.map(str::to_owned),
        micro_usd: micro,
        at: SystemTime::now(),
    }
}

/// Today's global counter.
pub(crate) fn global_day() -> SpendCounter {
    SpendCounter::new(None, BudgetWindow::Day, SystemTime::now())
}

/// Today's global total as the store reports it.
pub(crate) async fn global_spent(s: &dyn SharedState) -> u64 {
    s.snapshot(&[global_day()], &[]).await.unwrap().spent[0]
}
