//! Rung 8: a streamed generation, timed: time to first token and the largest gap between
//! chunks, compared with the configured first-token and idle timeouts; a stream that
//! arrives all at once (a buffering proxy) flagged.

use crate::context::Ladder;
use crate::finding::Finding;
use crate::report::{Check, Rung, millis};
use crate::rungs::generation::{looks_buffered, record_failure, run_timed, tiny_request};
use crate::upstream::generation_limit;

/// Rung 8 for `model`. `None` after a failure.
pub(crate) async fn probe(ladder: &mut Ladder<'_>, model: &str) -> Option<()> {
    let request = tiny_request(model, true);
    let limit = generation_limit(ladder.options);
    let timed = match run_timed(ladder, &request, limit).await {
        Ok(t) => t,
        Err(e) => {
            record_failure(ladder, Rung::Stream, model, e, true);
            return None;
        }
    };
    let ttft = timed.ttft.unwrap_or(timed.total);
    let mut check = Check::ok(
        Rung::Stream,
        format!(
            "first token after {} ms, largest gap {} ms, {} output events",
            millis(ttft),
            millis(timed.max_gap),
            timed.output_events
        ),
    )
    .subject(model)
    .elapsed(timed.total)
    .measure("ttft_ms", millis(ttft))
    .measure("max_gap_ms", millis(timed.max_gap))
    .measure(
        "output_events",
        u64::try_from(timed.output_events).unwrap_or(u64::MAX),
    );
    if let Some(l) = timed.load_time() {
        check = check.measure("load_ms", millis(l));
    }
    ladder.checks.push(check);

    // The slowest first token seen: this one, or the cold start of rung 7.
    let cold = ladder.cold_start.is_some_and(|c| c > ttft);
    let slowest = ladder.cold_start.map_or(ttft, |c| c.max(ttft));
    let configured = ladder.probe.first_token_timeout;
    if slowest > configured {
        let finding = Finding::FirstTokenTimeoutTooShort {
            configured,
            measured: slowest,
            cold,
        };
        ladder
            .checks
            .push(finding.check(Rung::Stream).subject(model));
    }
    let idle = ladder.probe.client.timeouts.idle;
    if timed.max_gap > idle {
        let finding = Finding::IdleGapTooLong {
            configured: idle,
            measured: timed.max_gap,
        };
        ladder
            .checks
            .push(finding.check(Rung::Stream).subject(model));
    }
    if let Some(total) = ladder.probe.client.timeouts.total {
        let longest = ladder
            .cold_start
            .map_or(timed.total, |c| c.max(timed.total));
        if longest > total {
            let finding = Finding::TotalTimeoutTooShort {
                configured: total,
                measured: longest,
            };
            ladder
                .checks
                .push(finding.check(Rung::Stream).subject(model));
        }
    }
    if looks_buffered(timed.output_events, timed.spread, ttft) {
        let finding = Finding::StreamBuffered {
            events: timed.output_events,
        };
        ladder
            .checks
            .push(finding.check(Rung::Stream).subject(model));
    }
    Some(())
}
