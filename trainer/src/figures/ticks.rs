//! Where ticks go and how they are labelled: nice steps, linear, integer and log ticks, tick
//! labels in plain or scientific style, thousands separators, and thinning ticks whose labels
//! would overlap.

/// The smallest of 1, 2, 5 × 10^k that cuts `span` into at most `max_ticks` steps.
pub(super) fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let raw = (span / max_ticks.max(1) as f64).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// Multiples of a nice step within `lo..=hi`, at most about `max_ticks` of them.
pub(super) fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let step = nice_step(hi - lo, max_ticks);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Integer ticks (multiples of a nice integer step) within `lo..=hi`.
pub(super) fn integer_ticks(lo: usize, hi: usize, max_ticks: usize) -> Vec<usize> {
    let step = nice_step((hi - lo) as f64, max_ticks).max(1.0).round() as usize;
    (lo.div_ceil(step)..=hi / step).map(|k| k * step).collect()
}

/// Ticks for a log axis over `lo..=hi` (both > 0): decades when the range spans three or more,
/// else 1, 2, 5 × 10^k, else every integer mantissa.
pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let e0 = lo.log10().floor() as i32 - 1;
    let e1 = hi.log10().ceil() as i32 + 1;
    let within = |mantissas: &[f64]| -> Vec<f64> {
        (e0..=e1)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    let decades = within(&[1.0]);
    if decades.len() >= 3 {
        let every = decades.len().div_ceil(8);
        return decades.into_iter().step_by(every).collect();
    }
    let coarse = within(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 {
        return coarse;
    }
    within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
}

/// Whether an axis with these ticks labels them in `2.5e-5` style: when any non-zero tick is
/// below 0.001 or from 10⁴ up (then all of them, so one axis never mixes styles).
pub(super) fn scientific(ticks: &[f64]) -> bool {
    ticks.iter().any(|t| t.abs() > 1e-12 && !(1e-3..1e4).contains(&t.abs()))
}

/// A tick label: `2.5e-5` style if `sci`, else plain decimals with three significant digits
/// at most (`0.005`, `0.0015`, `150`).
pub(super) fn tick_label(v: f64, sci: bool) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if sci {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exp}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// A tick label with a real minus sign.
pub(super) fn signed_label(v: f64, sci: bool) -> String {
    tick_label(v, sci).replace('-', "\u{2212}")
}

/// `n` with commas between groups of three digits: 60,000.
pub(super) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Of the sorted tick values at pixel positions `px` (labels `widths` wide), the ones whose
/// centred labels do not overlap, keeping the first and last.
pub(super) fn spaced_ticks(px: &[i32], widths: &[usize], gap: i32) -> Vec<usize> {
    let fits = |a: usize, b: usize| px[b] - px[a] >= (widths[a] + widths[b]) as i32 / 2 + gap;
    let mut kept: Vec<usize> = Vec::new();
    for i in 0..px.len() {
        match kept.last() {
            Some(&j) if !fits(j, i) => {
                if i == px.len() - 1 && kept.len() > 1 {
                    kept.pop();
                    if kept.last().is_none_or(|&j| fits(j, i)) {
                        kept.push(i);
                    }
                }
            }
            _ => kept.push(i),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_labels() {
        assert_eq!(log_ticks(0.8e-5, 1.2e-3), vec![1e-5, 1e-4, 1e-3]);
        assert_eq!(log_ticks(0.004, 0.06).len(), 4); // 0.005, 0.01, 0.02, 0.05
        assert!(log_ticks(0.0051, 0.0153).len() >= 2);
        assert_eq!(integer_ticks(1, 150, 10), (1..=7).map(|k| k * 20).collect::<Vec<_>>());
        assert_eq!(integer_ticks(1, 1, 10), vec![1]);
        assert_eq!(integer_ticks(0, 512, 8), (0..=5).map(|k| k * 100).collect::<Vec<_>>());
        assert_eq!(linear_ticks(-2.0, 2.0, 6), vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        for (v, sci, s) in [
            (1e-5, true, "1e-5"),
            (2.5e-5, true, "2.5e-5"),
            (3.0 * 1e-4, true, "3e-4"),
            (1e-3, true, "1e-3"),
            (0.005, false, "0.005"),
            (0.01, false, "0.01"),
            (0.0015, false, "0.0015"),
            (150.0, false, "150"),
            (-1.5, false, "-1.5"),
            (0.0, false, "0"),
            (0.0, true, "0"),
        ] {
            assert_eq!(tick_label(v, sci), s);
        }
        assert!(scientific(&[1e-5, 1e-4, 1e-3]));
        assert!(!scientific(&[0.0, 0.005, 0.01]));
    }

    #[test]
    fn thousands_separators_and_spaced_ticks() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(60_000), "60,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        // Labels 40 px wide at 30 px spacing: every other one, the last kept.
        assert_eq!(spaced_ticks(&[0, 30, 60, 90, 120], &[40; 5], 8), vec![0, 2, 4]);
        assert_eq!(spaced_ticks(&[0, 100, 110], &[40; 3], 8), vec![0, 2]);
        assert_eq!(spaced_ticks(&[0, 5], &[40; 2], 8), vec![0]);
    }
}
