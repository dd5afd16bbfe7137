//! Fair-queue ordering of 10,000 open tickets (target ≤ 5 ms).
//!
//! `cargo bench --bench queue`

use chrono::NaiveDateTime;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use guildhall::domain::queue::{build, QueueItem, Throughput};
use std::time::Duration;

/// A deterministic mix: ~40% paid with varied amounts, varied waiting times.
fn tickets(n: usize) -> Vec<QueueItem> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let base = NaiveDateTime::default();
    (0..n)
        .map(|i| {
            let r = next();
            QueueItem {
                ticket_id: i as i64,
                paid_amount: if r % 10 < 4 {
                    500 + (r >> 8) as i64 % 50_000
                } else {
                    0
                },
                waiting_since: base + chrono::Duration::seconds((next() % 5_000_000) as i64),
                entitlement: 0,
            }
        })
        .collect()
}

fn queue(c: &mut Criterion) {
    let items = tickets(10_000);
    let t = Throughput {
        resolved_last_30_days: 400,
        min_response_hours: 4,
    };
    for pct in [0, 20, 50] {
        c.bench_function(&format!("queue_order_10k/free_share_{pct}pct"), |b| {
            b.iter_batched(
                || items.clone(),
                |v| build(v, pct, &t),
                BatchSize::LargeInput,
            )
        });
    }
}

criterion_group!(name = benches; config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5)); targets = queue);
criterion_main!(benches);
