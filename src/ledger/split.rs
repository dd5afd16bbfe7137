//! Splitting a released amount between helper, project and platform.

/// Parts of a release, in minor units; they always sum to the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// The helper's part: the remainder.
    pub helper: i64,
    /// The project's commission: `floor(amount × commission_bps / 10 000)`.
    pub project: i64,
    /// The platform's fee: `floor(amount × platform_bps / 10 000)`.
    pub platform: i64,
    /// Platform rate used, basis points.
    pub platform_bps: i32,
    /// Commission rate used, basis points.
    pub commission_bps: i32,
}

/// Splits `amount` (≥ 0): platform fee and project commission are each
/// floored; the helper gets the remainder. `None` for a negative amount or
/// rates outside 0..=10 000 or together above 10 000.
pub fn split(amount: i64, platform_bps: i32, commission_bps: i32) -> Option<Split> {
    if amount < 0
        || !(0..=10_000).contains(&platform_bps)
        || !(0..=10_000).contains(&commission_bps)
        || platform_bps + commission_bps > 10_000
    {
        return None;
    }
    let part = |bps: i32| i64::try_from(i128::from(amount) * i128::from(bps) / 10_000).ok();
    let platform = part(platform_bps)?;
    let project = part(commission_bps)?;
    let helper = amount.checked_sub(platform)?.checked_sub(project)?;
    Some(Split {
        helper,
        project,
        platform,
        platform_bps,
        commission_bps,
    })
}

#[cfg(test)]
mod tests {
    use super::split;
    use proptest::prelude::*;

    #[test]
    fn default_rates_on_100_00() {
        let s = split(10_000, 500, 1000).unwrap();
        assert_eq!((s.helper, s.project, s.platform), (8_500, 1_000, 500));
    }

    #[test]
    fn edge_amounts_and_rates() {
        let one = split(1, 500, 1000).unwrap();
        assert_eq!((one.helper, one.project, one.platform), (1, 0, 0));
        let odd = split(999, 500, 1000).unwrap();
        assert_eq!((odd.helper, odd.project, odd.platform), (851, 99, 49));
        let none = split(12_345, 500, 0).unwrap();
        assert_eq!((none.helper, none.project, none.platform), (11_728, 0, 617));
        let max = split(12_345, 500, 3000).unwrap();
        assert_eq!((max.helper, max.project, max.platform), (8_025, 3_703, 617));
        assert_eq!(split(0, 500, 1000).map(|s| s.helper), Some(0));
        assert!(split(-1, 500, 1000).is_none());
        assert!(split(100, 6000, 5000).is_none());
        let big = split(i64::MAX, 500, 3000).unwrap();
        assert_eq!(big.helper + big.project + big.platform, i64::MAX);
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_whole(amount in 0i64..=i64::MAX / 2, platform in 0i32..=2000, commission in 0i32..=3000) {
            let s = split(amount, platform, commission).unwrap();
            prop_assert_eq!(s.helper + s.project + s.platform, amount);
            prop_assert!(s.helper >= 0 && s.project >= 0 && s.platform >= 0);
            prop_assert_eq!(s.platform, (i128::from(amount) * i128::from(platform) / 10_000) as i64);
        }
    }
}
