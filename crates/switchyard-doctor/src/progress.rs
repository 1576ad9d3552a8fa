//! Progress lines while a slow probe runs.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a waiting probe reports that it is still waiting.
pub(crate) const TICK: Duration = Duration::from_secs(5);

/// Awaits `fut`, calling `progress` every `every` with how long `label` has been waiting.
pub(crate) async fn with_ticks<F: Future>(
    fut: F,
    every: Duration,
    label: &str,
    progress: &mut dyn FnMut(&str),
) -> F::Output {
    let started = Instant::now();
    let mut ticks = tokio::time::interval_at(started + every, every);
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = ticks.tick() => {
                progress(&format!("{label}: still waiting ({} s)", started.elapsed().as_secs()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_while_waiting_and_returns_the_output() {
        let mut lines = Vec::new();
        let slow = async {
            tokio::time::sleep(Duration::from_millis(130)).await;
            7
        };
        let out = with_ticks(slow, Duration::from_millis(40), "local: rung 7", &mut |l| {
            lines.push(l.to_owned())
        })
        .await;
        assert_eq!(out, 7);
        assert!((2..=4).contains(&lines.len()), "{lines:?}");
        assert!(lines[0].starts_with("local: rung 7: still waiting"));
    }
}
