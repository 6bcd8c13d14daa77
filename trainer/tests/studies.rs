//! The PCA baseline and the semi-supervised study, end to end on a slice of MNIST.

use std::path::Path;
use trainer::experiments::{pca_baseline, semisup_study};
use trainer::mnist::Mnist;
use trainer::progress::Progress;
use trainer::recipe;
use trainer::semisup::{SemisupConfig, Start};
use trainer::train::{State, Trainer, FIGURES, METRICS};

fn small() -> Mnist {
    let mut m = Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).unwrap();
    m.train = m.train.truncated(2000);
    m.test = m.test.truncated(500);
    m
}

#[test]
fn pca_writes_its_baselines_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let scores = pca_baseline::run_pca(&small(), dir.path()).unwrap();
    assert_eq!(scores.iter().map(|s| s.components).collect::<Vec<_>>(), vec![2, 30, 64]);
    assert!(scores[0].test_mse > scores[1].test_mse && scores[1].test_mse > scores[2].test_mse);
    for s in &scores {
        assert!((s.per_image_squared_error - 784.0 * s.test_mse).abs() < 1e-9);
    }
    for f in ["map.png", "examples.png"] {
        assert!(dir.path().join(FIGURES).join(f).is_file(), "{f}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(METRICS)).unwrap()).unwrap();
    assert_eq!(json["baselines"][1]["components"], 30);
}

#[test]
fn semisup_scores_every_start_and_label_count() {
    let data = small();
    let mut c = recipe::find("fc").unwrap().config(0, 2);
    c.cap_epochs(Some(2), Some(0)).unwrap();
    let mut fc = Trainer::new(State::new(c).unwrap(), data.clone()).unwrap();
    fc.run(None, &mut Progress::Silent).unwrap();
    let config = SemisupConfig {
        label_counts: vec![100, 2000],
        max_epochs_small: 200,
        max_epochs_large: 30,
        ..SemisupConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    let scores = semisup_study::run_semisup(&fc.state.model, &data, &config, dir.path(), None, |_| seen += 1).unwrap();
    assert_eq!((scores.len(), seen), (6, 6));
    for s in &scores {
        // Ten classes: chance is 10 %; even a short run on 100 labels does far better.
        assert!(s.test_accuracy > 0.3 && s.test_accuracy <= 1.0, "{s:?}");
    }
    let full: Vec<_> = scores.iter().filter(|s| s.labels == 2000).collect();
    assert_eq!(full.iter().map(|s| s.start).collect::<Vec<_>>(), Start::ALL.to_vec());
    assert!(dir.path().join(FIGURES).join("accuracy.png").is_file());
}
