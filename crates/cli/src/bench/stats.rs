//! Latency samples and the summary a benchmark prints.

use std::time::Duration;

use serde::Serialize;

/// Bound on samples kept per run; beyond it, every other sample is dropped (reservoir-free
/// decimation keeps the distribution's shape and memory bounded).
pub const SAMPLES_MAX: usize = 4_000_000;

/// Latencies of completed operations, in microseconds.
#[derive(Default)]
pub struct Samples {
    micros: Vec<u32>,
    completed: u64,
    stride: u64,
}

impl Samples {
    /// Record one completed operation.
    pub fn record(&mut self, latency: Duration) {
        self.completed += 1;
        if self.stride > 1 && self.completed % self.stride != 0 {
            return;
        }
        if self.micros.len() >= SAMPLES_MAX {
            let kept: Vec<u32> = self.micros.iter().step_by(2).copied().collect();
            self.micros = kept;
            self.stride = self.stride.max(1) * 2;
        }
        self.micros
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    /// Merge another worker's samples.
    pub fn merge(&mut self, other: Samples) {
        self.completed += other.completed;
        self.micros.extend(other.micros);
    }

    /// Summarise for `elapsed` of wall time.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.micros.sort_unstable();
        let quantile = |q: f64| -> f64 {
            if self.micros.is_empty() {
                return 0.0;
            }
            let rank = ((self.micros.len() as f64 - 1.0) * q).round() as usize;
            f64::from(self.micros[rank]) / 1000.0
        };
        Summary {
            operations: self.completed,
            seconds: elapsed.as_secs_f64(),
            ops_per_sec: self.completed as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: quantile(0.50),
            p99_ms: quantile(0.99),
            p999_ms: quantile(0.999),
            max_ms: self.micros.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
        }
    }
}

/// What a benchmark run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Operations completed.
    pub operations: u64,
    /// Wall time measured.
    pub seconds: f64,
    /// Throughput.
    pub ops_per_sec: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// 99.9th percentile latency.
    pub p999_ms: f64,
    /// Worst latency.
    pub max_ms: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ops in {:.1}s: {:.0} ops/s, p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms",
            self.operations,
            self.seconds,
            self.ops_per_sec,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_sorted_samples() {
        let mut samples = Samples::default();
        for micros in (1..=1000).rev() {
            samples.record(Duration::from_micros(micros));
        }
        let summary = samples.summary(Duration::from_secs(2));
        assert_eq!(summary.operations, 1000);
        assert_eq!(summary.ops_per_sec, 500.0);
        assert_eq!(summary.p50_ms, 0.501);
        assert_eq!(summary.p99_ms, 0.990);
        assert_eq!(summary.p999_ms, 0.999);
        assert_eq!(summary.max_ms, 1.0);
    }

    #[test]
    fn an_empty_run_reports_zeroes() {
        let summary = Samples::default().summary(Duration::from_secs(1));
        assert_eq!((summary.operations, summary.p99_ms), (0, 0.0));
    }
}
