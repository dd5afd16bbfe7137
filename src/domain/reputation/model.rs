//! The reputation model, as pure functions (no database).
//!
//! A helper's reputation in a project is
//!
//! ```text
//! score = 100 · quality · (1 − β + β · trust)
//! ```
//!
//! * **quality** — a Bayesian average of the helper's outcomes in the
//!   project, each decayed by age, shrunk towards the project's prior:
//!
//!   ```text
//!   quality = (C · m + Σ wᵢ·dᵢ·oᵢ) / (C + Σ wᵢ·dᵢ)      dᵢ = 2^(−ageᵢ / half_life)
//!   ```
//!
//!   `oᵢ ∈ [0, 1]` is an outcome (1 = accepted resolution, a 5-star rating,
//!   an on-time first response; 0 = a reopen, a refund, a dispute, a late
//!   first response; a rating of s stars is (s − 1)/4), `wᵢ` its weight,
//!   `m` the project's prior (the weighted mean outcome of everyone in the
//!   project, 0.5 when it has none) and `C` the prior's strength in
//!   outcomes (configuration). A newcomer starts at `m`; every outcome moves
//!   the score less the older it is.
//!
//! * **trust** — EigenTrust over the project's vouching graph: each member
//!   spreads its trust evenly over the helpers it endorses, and a
//!   maintainer's approval of a helper counts as the maintainer's
//!   endorsement; the project's maintainers are pre-trusted. Power iteration
//!   of `t ← (1 − a) · Cᵀ t + a · p` with damping `a > 0` (configuration)
//!   until the change is below 1e-10. Trust is reported relative to the
//!   average scored member, capped at 1 (`min(1, t / mean t)`): a helper
//!   vouched for as much as the average one gets the full term, a helper
//!   nobody vouches for gets none.
//!
//! * **β** — how much trust counts (configuration, default 0.3): an
//!   unendorsed helper keeps 70% of their quality.
//!
//! ## The sock-puppet bound
//! For a set S of non-pre-trusted members, summing the iteration over S
//! gives `T_S = (1 − a) · (F + L_S)` where F is the trust flowing into S
//! from outside and `L_S ≤ T_S` what S passes among itself. So
//! `T_S ≤ (1 − a)/a · F`: a ring of sock puppets endorsing each other gains
//! nothing unless someone outside endorses it, and then at most
//! (1 − a)/a times what that endorser gives away (its trust divided by the
//! number of helpers it endorses). [`ring_trust_bound`] computes it, and a
//! test plants rings and checks it.

use ndarray::Array1;

/// Weight and value of one outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// 0 (bad) to 1 (good).
    pub value: f64,
    /// How much it counts.
    pub weight: f64,
    /// Age in days (0 = today).
    pub age_days: f64,
}

pub use crate::config::ReputationParams as Params;

/// `2^(−age / half_life)`.
pub fn decay(age_days: f64, half_life_days: f64) -> f64 {
    if half_life_days <= 0.0 {
        return 1.0;
    }
    (-(age_days.max(0.0)) / half_life_days * std::f64::consts::LN_2).exp()
}

/// Σ w·d and Σ w·d·o of a helper's outcomes.
pub fn evidence(outcomes: &[Outcome], half_life_days: f64) -> (f64, f64) {
    outcomes.iter().fold((0.0, 0.0), |(w, wo), o| {
        let wd = o.weight * decay(o.age_days, half_life_days);
        (w + wd, wo + wd * o.value)
    })
}

/// The Bayesian average with prior mean `prior` of strength `c`.
pub fn quality(weight: f64, weighted_value: f64, prior: f64, c: f64) -> f64 {
    let q = (c * prior + weighted_value) / (c + weight);
    if q.is_finite() {
        q.clamp(0.0, 1.0)
    } else {
        prior
    }
}

/// The final score, 0–100.
pub fn score(quality: f64, trust_normalised: f64, trust_weight: f64) -> f64 {
    100.0 * quality * (1.0 - trust_weight + trust_weight * trust_normalised.clamp(0.0, 1.0))
}

/// EigenTrust by power iteration over an edge list.
///
/// `n` members (0..n); `edges` are (endorser, endorsee) pairs (self-loops and
/// duplicates are ignored); `pretrusted` members share the restart vector
/// (all members when empty). Members who endorse nobody give their trust
/// back to the pre-trusted. Returns each member's trust (summing to 1).
pub fn eigentrust(
    n: usize,
    edges: &[(usize, usize)],
    pretrusted: &[usize],
    damping: f64,
) -> Array1<f64> {
    if n == 0 {
        return Array1::zeros(0);
    }
    let damping = damping.clamp(1e-6, 1.0);
    let mut p = Array1::<f64>::zeros(n);
    let restart: Vec<usize> = if pretrusted.is_empty() {
        (0..n).collect()
    } else {
        pretrusted.iter().copied().filter(|&i| i < n).collect()
    };
    for &i in &restart {
        p[i] = 1.0 / restart.len() as f64;
    }
    let mut clean: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(i, j)| i != j && i < n && j < n)
        .collect();
    clean.sort_unstable();
    clean.dedup();
    let mut out_degree = vec![0usize; n];
    for &(i, _) in &clean {
        out_degree[i] += 1;
    }
    let mut t = p.clone();
    for _ in 0..1000 {
        let mut next = Array1::<f64>::zeros(n);
        let mut dangling = 0.0;
        for i in 0..n {
            if out_degree[i] == 0 {
                dangling += t[i];
            }
        }
        for &(i, j) in &clean {
            next[j] += t[i] / out_degree[i] as f64;
        }
        next.zip_mut_with(&p, |x, &pi| {
            *x = (1.0 - damping) * (*x + dangling * pi) + damping * pi
        });
        let change = (&next - &t).mapv(f64::abs).sum();
        t = next;
        if change < 1e-10 {
            break;
        }
    }
    t
}

/// The most total trust a set of members outside the pre-trusted can hold
/// when `inflow` is the trust flowing into it from outside: `(1 − a)/a · F`.
pub fn ring_trust_bound(inflow: f64, damping: f64) -> f64 {
    (1.0 - damping) / damping * inflow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves_every_half_life() {
        assert!((decay(0.0, 180.0) - 1.0).abs() < 1e-12);
        assert!((decay(180.0, 180.0) - 0.5).abs() < 1e-12);
        assert!((decay(360.0, 180.0) - 0.25).abs() < 1e-12);
        assert_eq!(decay(10.0, 0.0), 1.0, "no half-life: no decay");
    }

    #[test]
    fn quality_starts_at_the_prior_and_moves_with_evidence() {
        let p = Params::default();
        assert_eq!(quality(0.0, 0.0, 0.6, p.prior_weight), 0.6);
        let good: Vec<Outcome> = (0..20)
            .map(|_| Outcome {
                value: 1.0,
                weight: 1.0,
                age_days: 0.0,
            })
            .collect();
        let (w, wo) = evidence(&good, p.half_life_days);
        let q = quality(w, wo, 0.5, p.prior_weight);
        assert!((q - 22.5 / 25.0).abs() < 1e-12, "{q}");
        // The same record a year older counts less: closer to the prior.
        let old: Vec<Outcome> = good
            .iter()
            .map(|o| Outcome {
                age_days: 365.0,
                ..*o
            })
            .collect();
        let (w2, wo2) = evidence(&old, p.half_life_days);
        let q_old = quality(w2, wo2, 0.5, p.prior_weight);
        assert!(q_old < q && q_old > 0.5, "{q_old}");
        // One bad outcome among many good ones barely moves it; many do.
        let mut mixed = good.clone();
        mixed.push(Outcome {
            value: 0.0,
            weight: 2.0,
            age_days: 0.0,
        });
        let (w3, wo3) = evidence(&mixed, p.half_life_days);
        assert!(quality(w3, wo3, 0.5, p.prior_weight) < q);
    }

    #[test]
    fn eigentrust_favours_the_endorsed_and_sums_to_one() {
        // 0 is the maintainer; 0 endorses 1; 1 endorses 2; 3 is unendorsed.
        let t = eigentrust(4, &[(0, 1), (1, 2)], &[0], 0.15);
        assert!((t.sum() - 1.0).abs() < 1e-9);
        assert!(t[1] > t[3] && t[2] > t[3]);
        assert!(t[3].abs() < 1e-12, "nobody endorses 3: {}", t[3]);
    }

    #[test]
    fn a_sock_puppet_ring_stays_under_the_bound() {
        let damping = 0.15;
        for k in [2usize, 5, 20, 100] {
            // 0 maintainer, 1..=3 honest helpers endorsed by the maintainer,
            // then a ring of k puppets endorsing each other (all pairs).
            let n = 4 + k;
            let mut edges = vec![(0, 1), (0, 2), (0, 3), (1, 2), (2, 1)];
            let ring: Vec<usize> = (4..n).collect();
            for &i in &ring {
                for &j in &ring {
                    edges.push((i, j));
                }
            }
            // Alone, the ring gains nothing however large it is.
            let t = eigentrust(n, &edges, &[0], damping);
            let ring_trust: f64 = ring.iter().map(|&i| t[i]).sum();
            assert!(ring_trust < 1e-9, "k={k}: isolated ring holds {ring_trust}");

            // One gullible honest helper (3) endorses one puppet.
            edges.push((3, 4));
            let t = eigentrust(n, &edges, &[0], damping);
            let ring_trust: f64 = ring.iter().map(|&i| t[i]).sum();
            let inflow = t[3] / 1.0; // 3 endorses only the puppet
            let bound = ring_trust_bound(inflow, damping);
            assert!(
                ring_trust <= bound + 1e-9,
                "k={k}: ring holds {ring_trust}, bound {bound}"
            );
            // And no puppet outranks an honest helper vouched for by the maintainer.
            let best_puppet = ring.iter().map(|&i| t[i]).fold(0.0, f64::max);
            assert!(
                best_puppet < t[1],
                "k={k}: puppet {best_puppet} vs honest {}",
                t[1]
            );
        }
    }

    #[test]
    fn score_combines_quality_and_trust() {
        assert!((score(0.8, 1.0, 0.3) - 80.0).abs() < 1e-9);
        assert!((score(0.8, 0.0, 0.3) - 56.0).abs() < 1e-9);
        assert_eq!(score(0.0, 1.0, 0.3), 0.0);
    }
}
