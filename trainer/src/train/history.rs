//! The run's history as `history.csv`.

use super::EpochRecord;

/// `phase,epoch,train_loss,val_mse,lr,seconds`, one row per epoch.
pub fn history_csv(history: &[EpochRecord]) -> String {
    let mut s = String::from("phase,epoch,train_loss,val_mse,lr,seconds\n");
    for r in history {
        s += &format!(
            "{},{},{:e},{:e},{:e},{:.4}\n",
            r.phase, r.epoch, r.train_loss, r.val_mse, r.lr, r.seconds
        );
    }
    s
}
