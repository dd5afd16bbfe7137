//! Request metrics in Prometheus text format, kept in process memory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and latency histograms per route.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    inbound: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    /// Records one request. `route` is the matched pattern (e.g.
    /// `/api/v1/projects/{slug}`), never the raw path, to bound cardinality.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        {
            let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *r.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        let secs = elapsed.as_secs_f64();
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = l.entry(route.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts one delivery to an inbound channel (`email`, `github`, …) by
    /// what became of it.
    pub fn inbound(&self, channel: &'static str, outcome: &'static str) {
        *self
            .inbound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((channel, outcome))
            .or_default() += 1;
    }

    /// Renders every metric, plus the given gauges, as Prometheus text.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP guildhall_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE guildhall_http_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "guildhall_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP guildhall_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE guildhall_http_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let route = escape(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "guildhall_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "guildhall_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(
                out,
                "guildhall_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "guildhall_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP guildhall_inbound_total Deliveries to inbound channels (reply mail, webhooks), by channel and outcome.\n");
        out.push_str("# TYPE guildhall_inbound_total counter\n");
        for ((channel, outcome), n) in self
            .inbound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "guildhall_inbound_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP guildhall_job_row_failures_total Rows a scheduled job failed on and skipped, by job.\n");
        out.push_str("# TYPE guildhall_job_row_failures_total counter\n");
        for (job, n) in job_failures()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "guildhall_job_row_failures_total{{job=\"{job}\"}} {n}");
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// Rows scheduled jobs failed on, per job, since the process started
/// (process-wide: jobs run outside any request).
fn job_failures() -> &'static Mutex<BTreeMap<&'static str, u64>> {
    static FAILURES: std::sync::OnceLock<Mutex<BTreeMap<&'static str, u64>>> =
        std::sync::OnceLock::new();
    FAILURES.get_or_init(Mutex::default)
}

/// Counts one row a scheduled job failed on (see `domain::each_row`).
pub fn job_row_failed(job: &'static str) {
    *job_failures()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(job)
        .or_default() += 1;
}

/// How many rows `job` failed on so far in this process.
pub fn job_row_failures(job: &str) -> u64 {
    job_failures()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(job)
        .copied()
        .unwrap_or(0)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
