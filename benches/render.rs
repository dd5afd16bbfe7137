//! Rendering the web app's heaviest pages (target: p99 ≤ 5 ms each): the
//! ticket page with 50 messages as a helper sees it (bids, matches,
//! templates, the AI answer) and a maintainer's dashboard for a year (one
//! bar a month, 50 helpers). Criterion times the mean; a plain loop of
//! 5,000 renders then prints p50 and p99 and the page's size.
//!
//! `cargo bench --bench render`

use criterion::{criterion_group, criterion_main, Criterion};
use guildhall::web::pages::TicketPage;
use guildhall::web::team::DashboardPage;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn percentiles(name: &str, mut f: impl FnMut() -> usize) {
    let mut times = Vec::with_capacity(5_000);
    let mut bytes = 0;
    for _ in 0..5_000 {
        let t = Instant::now();
        bytes = black_box(f());
        times.push(t.elapsed());
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name}: p50 {:.3} ms, p99 {:.3} ms, {bytes} bytes of HTML",
        p(0.50).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
    );
}

fn render(c: &mut Criterion) {
    let ticket = TicketPage::sample(50);
    let dashboard = DashboardPage::sample_year();
    let mut g = c.benchmark_group("render");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("ticket_page_50_messages", |b| {
        b.iter(|| ticket.html().expect("renders").len())
    });
    g.bench_function("dashboard_year", |b| {
        b.iter(|| dashboard.html().expect("renders").len())
    });
    g.finish();
    percentiles("ticket page, 50 messages", || {
        ticket.html().expect("renders").len()
    });
    percentiles("dashboard, a year", || {
        dashboard.html().expect("renders").len()
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
