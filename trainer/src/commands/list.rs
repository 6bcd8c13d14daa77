//! `trainer list`: every experiment, one line each.

use crate::experiments::Experiment;

/// Prints every experiment's name and what it is.
pub fn run() {
    for e in Experiment::all() {
        println!("{:<17} {}", e.name(), e.about());
    }
}
