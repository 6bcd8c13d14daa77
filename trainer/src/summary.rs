//! The table that ends `cargo run -p trainer --release`: every variant's figures side by side.

use crate::experiments::pca_baseline::PcaScore;
use crate::mnist::PIXELS;
use crate::semisup::{Score, Start};
use crate::train::Metrics;

/// One autoencoder's line.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Variant.
    pub variant: String,
    /// Test MSE per pixel.
    pub test_mse: f64,
    /// Zero-code fraction.
    pub zero_code_fraction: f64,
    /// Epochs per phase, e.g. `100 + 50`.
    pub epochs: String,
    /// Wall seconds of the run.
    pub seconds: f64,
}

impl Row {
    /// The line of a run's metrics.
    pub fn from_metrics(m: &Metrics) -> Row {
        Row {
            variant: m.variant.clone(),
            test_mse: m.test_mse,
            zero_code_fraction: m.zero_code_fraction,
            epochs: m.epochs.values().map(|v| v.to_string()).collect::<Vec<_>>().join(" + "),
            seconds: m.wall_seconds,
        }
    }
}

/// The summary as Markdown: autoencoders, PCA baselines, semi-supervised accuracies, total time.
pub fn markdown(rows: &[Row], pca: &[PcaScore], semisup: &[Score], total_seconds: f64) -> String {
    let mut s = String::from("| variant | test MSE | per-image squared error | zero codes | epochs | seconds |\n");
    s += "| --- | --- | --- | --- | --- | --- |\n";
    for r in rows {
        s += &format!(
            "| {} | {:.6} | {:.2} | {:.1} % | {} | {:.0} |\n",
            r.variant,
            r.test_mse,
            r.test_mse * PIXELS as f64,
            100.0 * r.zero_code_fraction,
            r.epochs,
            r.seconds
        );
    }
    for p in pca {
        s += &format!(
            "| pca-{} | {:.6} | {:.2} | | | |\n",
            p.components, p.test_mse, p.per_image_squared_error
        );
    }
    if !semisup.is_empty() {
        s += "\n| semisup: labels | ";
        s += &Start::ALL.map(|st| st.label()).join(" | ");
        s += " |\n| --- | --- | --- | --- |\n";
        let mut counts: Vec<usize> = semisup.iter().map(|x| x.labels).collect();
        counts.dedup();
        for n in counts {
            s += &format!("| {n} |");
            for st in Start::ALL {
                match semisup.iter().find(|x| x.labels == n && x.start == st) {
                    Some(x) => s += &format!(" {:.2} % |", 100.0 * x.test_accuracy),
                    None => s += " |",
                }
            }
            s += "\n";
        }
    }
    s += &format!("\nTotal wall time: {:.1} min\n", total_seconds / 60.0);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_every_row_with_per_image_error() {
        let rows = vec![Row {
            variant: "fc".into(),
            test_mse: 0.005,
            zero_code_fraction: 0.25,
            epochs: "100 + 50".into(),
            seconds: 54.0,
        }];
        let pca = vec![PcaScore {
            components: 30,
            test_mse: 0.0177,
            per_image_squared_error: 13.87,
        }];
        let semisup = vec![Score {
            labels: 100,
            start: Start::Frozen,
            test_accuracy: 0.75,
            epochs: 40,
        }];
        let t = markdown(&rows, &pca, &semisup, 90.0);
        assert!(t.contains("| fc | 0.005000 | 3.92 | 25.0 % | 100 + 50 | 54 |"), "{t}");
        assert!(t.contains("| pca-30 | 0.017700 | 13.87 |"), "{t}");
        assert!(t.contains("| 100 | 75.00 % | |"), "{t}");
        assert!(t.contains("Total wall time: 1.5 min"), "{t}");
    }
}
