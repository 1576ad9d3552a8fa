//! Rung 7: a minimal non-streamed generation (`stream: false`) with a tiny output limit;
//! load time reported (cold when `/api/ps` did not list the model, or the upstream reports
//! a long load).

use std::time::{Duration, Instant};

use crate::context::Ladder;
use crate::report::{Check, Rung, millis};
use crate::rungs::generation::{GenerationError, record_failure, tiny_request};
use crate::upstream::generation_limit;

/// A load this long means the model was not in memory.
const COLD_LOAD: Duration = Duration::from_millis(500);

/// Rung 7 for `model`. `None` after a failure.
pub(crate) async fn probe(ladder: &mut Ladder<'_>, model: &str) -> Option<()> {
    let was_loaded = ladder.upstream.is_loaded(model).await;
    let request = tiny_request(model, false);
    let limit = generation_limit(ladder.options);
    let started = Instant::now();
    let answer = match tokio::time::timeout(limit, ladder.upstream.complete(&request)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            record_failure(
                ladder,
                Rung::Generate,
                model,
                GenerationError::Provider(e),
                false,
            );
            return None;
        }
        Err(_) => {
            record_failure(
                ladder,
                Rung::Generate,
                model,
                GenerationError::Limit(limit),
                false,
            );
            return None;
        }
    };
    let total = started.elapsed();
    let load = answer
        .usage
        .and_then(|u| u.timings)
        .map(|t| Duration::from_nanos(t.load_ns));
    let cold = was_loaded == Some(false) || load.is_some_and(|l| l >= COLD_LOAD);
    let mut summary = format!("answered in {} ms", millis(total));
    match (cold, load) {
        (true, Some(l)) => {
            summary.push_str(&format!(", cold: the model loaded in {} ms", millis(l)))
        }
        (true, None) => summary.push_str(", cold: the model was not loaded before"),
        (false, _) if was_loaded == Some(true) => summary.push_str(", warm: the model was loaded"),
        (false, _) => {}
    }
    let mut check = Check::ok(Rung::Generate, summary)
        .subject(model)
        .measure("total_ms", millis(total));
    if let Some(l) = load {
        check = check.measure("load_ms", millis(l));
    }
    if cold {
        check = check.measure("cold_start_ms", millis(total));
        ladder.cold_start = Some(total);
    }
    ladder.checks.push(check);
    Some(())
}
