//! Measurement primitives: HDR latency histograms, throughput counted per time bucket, and an
//! offered load at a fixed rate.

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Latencies of one run, recorded in microseconds.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, 120_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.histogram.saturating_record(micros);
    }

    /// Adds every latency `other` recorded.
    pub fn merge(&mut self, other: &Latencies) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    /// The latency at `quantile` (0.0–1.0), in milliseconds.
    pub fn millis_at(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// (percentile, milliseconds) points for a latency-distribution plot.
    pub fn distribution(&self) -> Vec<(f64, f64)> {
        [
            0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0,
        ]
        .iter()
        .map(|p| (*p, self.millis_at(p / 100.0)))
        .collect()
    }
}

/// Completions counted per bucket since a start instant, for throughput-over-time plots.
#[derive(Debug, Clone)]
pub struct Throughput {
    start: Instant,
    bucket: Duration,
    counts: Vec<u64>,
}

impl Throughput {
    /// Counting from now, in buckets of `bucket`.
    pub fn starting_now(bucket: Duration) -> Self {
        Self::starting_at(Instant::now(), bucket)
    }

    /// Counting from `start`, in buckets of `bucket`.
    pub fn starting_at(start: Instant, bucket: Duration) -> Self {
        Self {
            start,
            bucket,
            counts: Vec::new(),
        }
    }

    /// Counts one completion at `at`.
    pub fn record(&mut self, at: Instant) {
        let index =
            (at.saturating_duration_since(self.start).as_nanos() / self.bucket.as_nanos()) as usize;
        if self.counts.len() <= index {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
    }

    /// (seconds since start, completions per second) points.
    pub fn series(&self) -> Vec<(f64, f64)> {
        let per_second = 1.0 / self.bucket.as_secs_f64();
        self.counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                (
                    i as f64 * self.bucket.as_secs_f64(),
                    *count as f64 * per_second,
                )
            })
            .collect()
    }
}

/// Starts `send(i)` for i in 0..count at `rate` a second, each in its own task (so a slow call
/// does not delay the next), and waits for them all.
pub async fn offered_load<F, Fut>(rate: u64, count: usize, send: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        ticker.tick().await;
        tasks.push(tokio::spawn(send(i)));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let mut latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.count(), 100);
        assert!((latencies.millis_at(0.5) - 50.0).abs() < 0.1);
        assert!((latencies.millis_at(0.99) - 99.0).abs() < 0.1);
    }

    #[test]
    fn throughput_is_counted_per_bucket() {
        let mut throughput = Throughput::starting_now(Duration::from_millis(500));
        let start = throughput.start;
        throughput.record(start);
        throughput.record(start + Duration::from_millis(600));
        throughput.record(start + Duration::from_millis(700));
        assert_eq!(throughput.series(), vec![(0.0, 2.0), (0.5, 4.0)]);
    }
}
