//! The benchmark scenarios, each measured next to its raw baseline in the same run.

pub mod backbone;

/// Sizes of a run: full, or `--quick` (a smoke run that keeps the code working).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Events for throughput runs.
    pub throughput_events: usize,
    /// Seconds of each fixed-rate latency run.
    pub rate_seconds: u64,
}

impl Scale {
    /// The scale for a full or a quick run.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                throughput_events: 2_000,
                rate_seconds: 1,
            }
        } else {
            Self {
                throughput_events: 20_000,
                rate_seconds: 10,
            }
        }
    }
}
