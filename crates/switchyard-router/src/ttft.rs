//! Rolling median of recent times to first token.

use std::collections::VecDeque;

/// Samples kept per provider.
pub(crate) const TTFT_WINDOW: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct TtftWindow {
    samples: VecDeque<u64>,
}

impl TtftWindow {
    pub(crate) fn push(&mut self, ms: u64) {
        if self.samples.len() == TTFT_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(ms);
    }

    /// The median (the lower middle for an even count), `None` without samples.
    pub(crate) fn p50(&self) -> Option<u64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<u64> = self.samples.iter().copied().collect();
        v.sort_unstable();
        v.get((v.len() - 1) / 2).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_window() {
        let mut w = TtftWindow::default();
        assert_eq!(w.p50(), None);
        for ms in [300, 100, 200] {
            w.push(ms);
        }
        assert_eq!(w.p50(), Some(200));
        for _ in 0..TTFT_WINDOW {
            w.push(5000);
        }
        assert_eq!(w.p50(), Some(5000));
        assert_eq!(w.samples.len(), TTFT_WINDOW);
    }
}
