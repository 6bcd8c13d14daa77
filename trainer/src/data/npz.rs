//! numpy's `.npz` archives (`np.savez`, `np.savez_compressed`): a zip of `.npy` arrays. The
//! samples are `x` (labels `y`), or `x_train` (labels `y_train`) with an optional test split
//! `x_test` (labels `y_test`); every label array is optional. Each array's bytes go through the
//! same checked `.npy` reader as a `.npy` file.

use std::io::{Cursor, Read};
use std::path::Path;
use zip::ZipArchive;

use super::array::{into_labels, into_samples, RawArray};
use super::error::{DataError, Origin};
use super::npy;
use super::samples::{check_compatible, Samples};

/// The archive's training samples and, with `x_test`, its test samples.
pub(crate) fn read(path: &Path, bytes: &[u8]) -> Result<(Samples, Option<Samples>), DataError> {
    let corrupt = |reason: String| DataError::CorruptNpz {
        path: path.to_path_buf(),
        reason,
    };
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt(e.to_string()))?;
    // numpy names the entries `x.npy`; the arrays are `x`.
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.name_for_index(i).unwrap_or_default())
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
        .collect();
    let index = |name: &str| names.iter().position(|n| n == name);
    let (x, y) = if index("x_train").is_some() {
        ("x_train", "y_train")
    } else if index("x").is_some() {
        ("x", "y")
    } else {
        let mut found = names.clone();
        found.sort();
        return Err(DataError::MissingArray {
            path: path.to_path_buf(),
            found,
        });
    };
    let mut split = |x: &str, y: &str| -> Result<Samples, DataError> {
        let samples = into_samples(Origin::array(path, x), array(&mut zip, path, x, index(x))?)?;
        match index(y) {
            None => Ok(samples),
            Some(i) => {
                let at = Origin::array(path, y);
                let labels = into_labels(&at, array(&mut zip, path, y, Some(i))?)?;
                samples.with_labels(labels, at)
            }
        }
    };
    let train = split(x, y)?;
    let test = match index("x_test") {
        Some(_) => Some(split("x_test", "y_test")?),
        None => None,
    };
    if let Some(test) = &test {
        check_compatible(&train, test)?;
    }
    Ok((train, test))
}

/// Entry `index` (array `name`), decompressed and read as `.npy`.
fn array(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    path: &Path,
    name: &str,
    index: Option<usize>,
) -> Result<RawArray, DataError> {
    let corrupt = |e: &dyn std::fmt::Display| DataError::CorruptNpz {
        path: path.to_path_buf(),
        reason: format!("array `{name}`: {e}"),
    };
    let index = index.ok_or_else(|| corrupt(&"not in the archive"))?;
    let mut entry = zip.by_index(index).map_err(|e| corrupt(&e))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|e| corrupt(&e))?;
    npy::parse(&Origin::array(path, name), &bytes)
}
