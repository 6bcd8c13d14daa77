//! The experiments `trainer train <name>` runs, above the training loop: every recipe's
//! autoencoder ([`recipe_run`]: train, draw, write the metrics), the anomaly recipe (whose spec
//! follows from the data, [`crate::anomaly::recipe`]), the PCA baseline ([`pca_baseline`]) and
//! the semi-supervised study ([`semisup_study`]). [`Experiment`] names them all, typed. The
//! one-class MNIST study ([`oneclass`], `trainer oneclass`) trains the anomaly recipe once per
//! digit.

pub mod oneclass;
pub mod pca_baseline;
pub mod recipe_run;
pub mod run_figures;
pub mod semisup_study;

use crate::anomaly::recipe as anomaly;
use crate::recipe::{self, Recipe, RECIPES};

/// One experiment, by kind.
#[derive(Clone, Copy)]
pub enum Experiment {
    /// An autoencoder recipe of [`RECIPES`].
    Recipe(&'static Recipe),
    /// The one-class `anomaly` recipe, its spec made for the data.
    Anomaly,
    /// The PCA baseline.
    Pca,
    /// The semi-supervised study on the `fc` encoder.
    Semisup,
}

impl Experiment {
    /// Every experiment: the recipes in order, then the anomaly recipe, the PCA baseline and
    /// the study.
    pub fn all() -> impl Iterator<Item = Experiment> {
        RECIPES
            .iter()
            .map(Experiment::Recipe)
            .chain([Experiment::Anomaly, Experiment::Pca, Experiment::Semisup])
    }

    /// The experiment called `name`.
    pub fn find(name: &str) -> Result<Experiment, String> {
        match name {
            anomaly::NAME => Ok(Experiment::Anomaly),
            "pca" => Ok(Experiment::Pca),
            "semisup" => Ok(Experiment::Semisup),
            _ => recipe::find(name)
                .map(Experiment::Recipe)
                .map_err(|e| format!("{e}, {}, pca, semisup", anomaly::NAME)),
        }
    }

    /// Its CLI name, and the name of its run directory under `runs/`.
    pub fn name(&self) -> &'static str {
        match self {
            Experiment::Recipe(r) => r.name,
            Experiment::Anomaly => anomaly::NAME,
            Experiment::Pca => "pca",
            Experiment::Semisup => "semisup",
        }
    }

    /// One line for `trainer list`.
    pub fn about(&self) -> String {
        match self {
            Experiment::Recipe(r) => r.about(),
            Experiment::Anomaly => anomaly::about(),
            Experiment::Pca => "PCA with 2, 30 and 64 components: the baseline".into(),
            Experiment::Semisup => {
                "64-10 softmax classifier on the fc encoder with 100, 1,000 and 60,000 labels: frozen, fine-tuned, from scratch"
                    .into()
            }
        }
    }
}
