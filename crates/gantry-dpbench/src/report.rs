//! Medians, the table and the RESULT line.

use std::collections::BTreeMap;

/// Samples of one case: peer name -> one value per round.
#[derive(Debug, Default)]
pub struct Samples(pub BTreeMap<&'static str, Vec<f64>>);

impl Samples {
    /// Records one round's value for `peer`.
    pub fn push(&mut self, peer: &'static str, v: f64) {
        self.0.entry(peer).or_default().push(v);
    }

    /// Median of `peer`'s values; NaN when it has none.
    pub fn median(&self, peer: &str) -> f64 {
        self.0.get(peer).map_or(f64::NAN, |v| median(v))
    }
}

/// Median (mean of the middle two for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// `a / b`, NaN when `b` is zero or missing.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b.is_nan() || b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// One table row: case, unit, medians per peer, formatted.
pub fn row(case: &str, unit: &str, s: &Samples, peers: &[&str], decimals: usize) -> String {
    let mut line = format!("{:<28} {:<8}", case, unit);
    for p in peers {
        let m = s.median(p);
        let cell = if m.is_nan() {
            "-".to_owned()
        } else {
            format!("{m:.decimals$}")
        };
        line.push_str(&format!(" {cell:>12}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn ratio_guards_zero() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert!(ratio(1.0, 0.0).is_nan());
    }
}
