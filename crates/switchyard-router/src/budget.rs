//! Spending caps: whether a hard cap is reached (cloud targets are then removed) and the
//! soft-threshold warning.

use std::time::SystemTime;

use crate::config::BudgetConfig;
use crate::ledger::{BudgetWindow, SpendLedger};

/// US dollars to micro-dollars, rounded to the nearest micro-dollar (caps are validated to
/// be finite and non-negative).
pub(crate) fn usd_to_micro(usd: f64) -> u64 {
    let micro = (usd * 1_000_000.0).round();
    if micro.is_finite() && micro > 0.0 {
        // Saturating float-to-int conversion of a non-negative value.
        micro as u64
    } else {
        0
    }
}

/// Micro-dollars as dollars, for messages and the spend gauge.
pub(crate) fn micro_to_usd(micro: u64) -> f64 {
    micro as f64 / 1_000_000.0
}

/// Checks the global caps and, when the request has a caller with caps, the caller's.
/// Returns a description of the first hard cap reached; with `warn_soft`, logs a warning
/// for each soft threshold crossed.
pub(crate) fn exhausted_cap(
    ledger: &dyn SpendLedger,
    global: &BudgetConfig,
    caller: Option<(&str, &BudgetConfig)>,
    at: SystemTime,
    warn_soft: bool,
) -> Option<String> {
    let scopes = std::iter::once((None, global)).chain(caller.map(|(c, b)| (Some(c), b)));
    for (scope, budget) in scopes {
        for (window, cap) in [
            (BudgetWindow::Day, budget.usd_per_day),
            (BudgetWindow::Month, budget.usd_per_month),
        ] {
            let Some(cap) = cap else { continue };
            let cap_micro = usd_to_micro(cap);
            let spent = ledger.spent(scope, window, at);
            let soft = (cap_micro as f64 * budget.soft_fraction).floor();
            if spent < cap_micro && !(warn_soft && spent as f64 >= soft) {
                continue;
            }
            let who = scope.map_or_else(|| "global".to_owned(), |c| format!("caller `{c}`"));
            let per = match window {
                BudgetWindow::Day => "daily",
                BudgetWindow::Month => "monthly",
            };
            if spent >= cap_micro {
                return Some(format!(
                    "{who} {per} cap of ${cap:.2} reached (spent ${:.6})",
                    micro_to_usd(spent)
                ));
            }
            tracing::warn!(
                scope = %who,
                window = per,
                spent_usd = micro_to_usd(spent),
                cap_usd = cap,
                "spend passed the soft threshold of a budget cap"
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryLedger;

    #[test]
    fn caps_global_and_per_caller() {
        let ledger = MemoryLedger::new();
        let now = SystemTime::now();
        let global = BudgetConfig {
            usd_per_day: Some(1.0),
            usd_per_month: None,
            soft_fraction: 0.5,
        };
        let tight = BudgetConfig {
            usd_per_day: None,
            usd_per_month: Some(0.1),
            soft_fraction: 0.8,
        };
        assert_eq!(
            exhausted_cap(&ledger, &global, Some(("a", &tight)), now, true),
            None
        );
        ledger.record(Some("a"), 100_000, now).ok();
        let msg = exhausted_cap(&ledger, &global, Some(("a", &tight)), now, true);
        assert!(
            msg.as_deref()
                .is_some_and(|m| m.contains("caller `a` monthly")),
            "{msg:?}"
        );
        // Another caller is only under the global cap, which is not reached yet.
        assert_eq!(
            exhausted_cap(&ledger, &global, Some(("b", &tight)), now, true),
            None
        );
        ledger.record(Some("b"), 900_000, now).ok();
        let msg = exhausted_cap(&ledger, &global, None, now, true);
        assert!(
            msg.as_deref()
                .is_some_and(|m| m.starts_with("global daily")),
            "{msg:?}"
        );
    }

    #[test]
    fn dollars_and_micro_dollars() {
        assert_eq!(usd_to_micro(10.0), 10_000_000);
        assert_eq!(usd_to_micro(0.0000015), 2);
        assert_eq!(usd_to_micro(-1.0), 0);
        assert_eq!(usd_to_micro(f64::NAN), 0);
        assert!((micro_to_usd(1_500_000) - 1.5).abs() < 1e-12);
    }
}
