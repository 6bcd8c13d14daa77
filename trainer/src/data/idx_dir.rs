//! A directory of IDX files named as MNIST's are: `train-images-idxN-ubyte` (the training
//! samples, required) and `t10k-images-idxN-ubyte` (the test samples, optional), each with an
//! optional labels file `train-labels-idxN-ubyte` / `t10k-labels-idxN-ubyte`; any of them
//! plain or gzipped (`.gz`, preferred when both are there). `N` is the number of dimensions:
//! `idx2` flat vectors, `idx3` 2-D items (MNIST), `idx4` H × W × C; any IDX element type.

use std::path::{Path, PathBuf};

use super::array::{into_labels, into_samples, RawArray};
use super::error::{DataError, Origin};
use super::samples::{check_compatible, Samples};
use super::source::{self, SourceFile};

/// The directory's training samples, its test samples when it has them, and the files read.
pub(crate) fn read(dir: &Path) -> Result<(Samples, Option<Samples>, Vec<SourceFile>), DataError> {
    let names = file_names(dir)?;
    let mut files = Vec::new();
    let images = find(dir, &names, "train-images")?.ok_or_else(|| DataError::NoIdxImages { dir: dir.to_path_buf() })?;
    let train = split(&images, find(dir, &names, "train-labels")?, &mut files)?;
    let test = match find(dir, &names, "t10k-images")? {
        Some(images) => Some(split(&images, find(dir, &names, "t10k-labels")?, &mut files)?),
        None => None,
    };
    if let Some(test) = &test {
        check_compatible(&train, test)?;
    }
    Ok((train, test, files))
}

/// The samples of `images`, labelled from `labels` when given.
fn split(images: &Path, labels: Option<PathBuf>, files: &mut Vec<SourceFile>) -> Result<Samples, DataError> {
    let samples = into_samples(Origin::file(images), array(images, files)?)?;
    match labels {
        None => Ok(samples),
        Some(path) => {
            let at = Origin::file(&path);
            let labels = into_labels(&at, array(&path, files)?)?;
            samples.with_labels(labels, at)
        }
    }
}

/// One IDX file, read once: hashed as stored, then gunzipped and decoded.
fn array(path: &Path, files: &mut Vec<SourceFile>) -> Result<RawArray, DataError> {
    let (raw, file) = source::read(path)?;
    files.push(file);
    let bytes = idx::inflate(path, raw)?;
    Ok(idx::parse_array(path, &bytes)?.into())
}

/// The names of the directory's entries.
fn file_names(dir: &Path) -> Result<Vec<String>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        names.push(entry.map_err(io)?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// `dir/{prefix}-idxN-ubyte[.gz]`: none, or the one file (the `.gz` when both forms are there);
/// two different `N` are [`DataError::AmbiguousIdx`].
fn find(dir: &Path, names: &[String], prefix: &str) -> Result<Option<PathBuf>, DataError> {
    let base = |name: &str| -> Option<String> {
        let plain = name.strip_suffix(".gz").unwrap_or(name);
        let digit = plain
            .strip_prefix(prefix)?
            .strip_prefix("-idx")?
            .strip_suffix("-ubyte")?;
        (digit.len() == 1 && digit.as_bytes()[0].is_ascii_digit()).then(|| plain.to_string())
    };
    let mut bases: Vec<String> = names.iter().filter_map(|n| base(n)).collect();
    bases.sort();
    bases.dedup();
    match &bases[..] {
        [] => Ok(None),
        [one] => {
            let gz = format!("{one}.gz");
            Ok(Some(dir.join(if names.contains(&gz) { &gz } else { one })))
        }
        _ => Err(DataError::AmbiguousIdx {
            dir: dir.to_path_buf(),
            names: bases,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_by_prefix_and_dimension_count() {
        let names: Vec<String> = [
            "t10k-images-idx4-ubyte",
            "train-images-idx3-ubyte",
            "train-images-idx3-ubyte.gz",
            "x",
        ]
        .map(String::from)
        .to_vec();
        let d = Path::new("d");
        assert_eq!(
            find(d, &names, "train-images").unwrap(),
            Some(d.join("train-images-idx3-ubyte.gz"))
        );
        assert_eq!(
            find(d, &names, "t10k-images").unwrap(),
            Some(d.join("t10k-images-idx4-ubyte"))
        );
        assert_eq!(find(d, &names, "train-labels").unwrap(), None);
        let two = ["train-images-idx2-ubyte", "train-images-idx3-ubyte.gz"].map(String::from);
        let e = find(d, &two, "train-images").unwrap_err();
        assert!(matches!(e, DataError::AmbiguousIdx { .. }), "{e}");
        let odd = ["train-images-idx10-ubyte", "train-images-idxa-ubyte"].map(String::from);
        assert_eq!(find(d, &odd, "train-images").unwrap(), None);
    }
}
