//! An array as a file stores it (typed values, the whole shape with the sample count first) and
//! its checked conversion into samples (f32, every value finite) or labels (i64, integers).

use super::error::{DataError, Origin};
use super::samples::{Element, Samples};

/// The values of an array in their stored type, row-major.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Typed {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// `$body` with `$v` bound to the vector, whatever its type.
macro_rules! each {
    ($typed:expr, $v:ident => $body:expr) => {
        match $typed {
            Typed::U8($v) => $body,
            Typed::I8($v) => $body,
            Typed::U16($v) => $body,
            Typed::I16($v) => $body,
            Typed::U32($v) => $body,
            Typed::I32($v) => $body,
            Typed::I64($v) => $body,
            Typed::F32($v) => $body,
            Typed::F64($v) => $body,
        }
    };
}

impl Typed {
    pub(crate) fn element(&self) -> Element {
        match self {
            Typed::U8(_) => Element::U8,
            Typed::I8(_) => Element::I8,
            Typed::U16(_) => Element::U16,
            Typed::I16(_) => Element::I16,
            Typed::U32(_) => Element::U32,
            Typed::I32(_) => Element::I32,
            Typed::I64(_) => Element::I64,
            Typed::F32(_) => Element::F32,
            Typed::F64(_) => Element::F64,
        }
    }

    /// The first value that is not finite once f32: NaN, ±Inf, or an f64 beyond f32's range
    /// (every integer type fits it).
    fn first_non_finite(&self) -> Option<usize> {
        match self {
            Typed::F32(v) => v.iter().position(|x| !x.is_finite()),
            Typed::F64(v) => v.iter().position(|&x| !(x as f32).is_finite()),
            _ => None,
        }
    }

    /// Every value as f32 (`as`: exact for 8- and 16-bit integers, rounded to nearest for wider
    /// integers and f64); f32 values are moved, not copied.
    #[allow(clippy::unnecessary_cast)] // f32 to f32 in the macro's f32 arm, never taken
    fn into_f32(self) -> Vec<f32> {
        match self {
            Typed::F32(v) => v,
            other => each!(&other, v => v.iter().map(|&x| x as f32).collect()),
        }
    }

    /// Value `i` as the file stores it, for messages.
    fn show(&self, i: usize) -> String {
        each!(self, v => format!("{:?}", v[i]))
    }

    /// Every value as an i64 label; `Err(i)` names the first that is not an integer.
    fn to_labels(&self) -> Result<Vec<i64>, usize> {
        fn whole(x: f64) -> Option<i64> {
            // 2^63 is the first f64 beyond i64; -2^63 is i64::MIN itself.
            let in_range = (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&x);
            (in_range && x.fract() == 0.0).then_some(x as i64)
        }
        match self {
            Typed::U8(v) => Ok(v.iter().map(|&x| x.into()).collect()),
            Typed::I8(v) => Ok(v.iter().map(|&x| x.into()).collect()),
            Typed::U16(v) => Ok(v.iter().map(|&x| x.into()).collect()),
            Typed::I16(v) => Ok(v.iter().map(|&x| x.into()).collect()),
            Typed::U32(v) => Ok(v.iter().map(|&x| x.into()).collect()),
            Typed::I32(v) => Ok(v.iter().map(|&x| x.into()).collect()),
            Typed::I64(v) => Ok(v.clone()),
            Typed::F32(v) => v.iter().enumerate().map(|(i, &x)| whole(x.into()).ok_or(i)).collect(),
            Typed::F64(v) => v.iter().enumerate().map(|(i, &x)| whole(x).ok_or(i)).collect(),
        }
    }
}

/// An array as stored: the whole shape (samples first) and the values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawArray {
    pub(crate) shape: Vec<usize>,
    pub(crate) values: Typed,
}

impl From<idx::Array> for RawArray {
    fn from(a: idx::Array) -> RawArray {
        let values = match a.values {
            idx::Values::U8(v) => Typed::U8(v),
            idx::Values::I8(v) => Typed::I8(v),
            idx::Values::I16(v) => Typed::I16(v),
            idx::Values::I32(v) => Typed::I32(v),
            idx::Values::F32(v) => Typed::F32(v),
            idx::Values::F64(v) => Typed::F64(v),
        };
        RawArray { shape: a.dims, values }
    }
}

/// The array as samples: at least 2 dimensions, at least one sample and one feature, every
/// value finite once f32.
pub(crate) fn into_samples(at: Origin, raw: RawArray) -> Result<Samples, DataError> {
    if raw.shape.len() < 2 {
        return Err(DataError::OneDimensional { at, shape: raw.shape });
    }
    let item = raw.shape[1..].to_vec();
    if raw.shape[0] == 0 {
        return Err(DataError::NoSamples { at });
    }
    let features: usize = item.iter().product();
    if features == 0 {
        return Err(DataError::NoFeatures { at, shape: item });
    }
    if let Some(i) = raw.values.first_non_finite() {
        return Err(DataError::NonFinite {
            at,
            place: place(&raw.shape, i),
            value: raw.values.show(i),
        });
    }
    let element = raw.values.element();
    Samples::new(raw.values.into_f32(), item, element, at)
}

/// `sample 3, feature 17 (index [3, 0, 17])` for flat position `i` in an array of `shape`.
fn place(shape: &[usize], i: usize) -> String {
    let features: usize = shape[1..].iter().product();
    let mut index = vec![0; shape.len()];
    let mut rest = i;
    for (d, &n) in shape.iter().enumerate().rev() {
        index[d] = rest % n;
        rest /= n;
    }
    format!("sample {}, feature {} (index {index:?})", i / features, i % features)
}

/// The array as labels: shape `[n]` or `[n, 1]`, every value an integer.
pub(crate) fn into_labels(at: &Origin, raw: RawArray) -> Result<Vec<i64>, DataError> {
    if !matches!(raw.shape[..], [_] | [_, 1]) {
        return Err(DataError::LabelsShape {
            at: at.clone(),
            shape: raw.shape,
        });
    }
    raw.values.to_labels().map_err(|i| DataError::BadLabel {
        at: at.clone(),
        place: format!("label {i}"),
        value: raw.values.show(i),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Origin {
        Origin::array("f.npz", "x")
    }

    #[test]
    fn places_name_the_sample_the_feature_and_the_index() {
        assert_eq!(place(&[4, 3], 7), "sample 2, feature 1 (index [2, 1])");
        assert_eq!(place(&[2, 2, 3], 11), "sample 1, feature 5 (index [1, 1, 2])");
    }

    #[test]
    fn samples_keep_the_item_shape_and_the_element() {
        let raw = RawArray {
            shape: vec![2, 1, 2],
            values: Typed::I16(vec![-3, 4, 500, -32768]),
        };
        let s = into_samples(at(), raw).unwrap();
        assert_eq!((s.len(), s.shape(), s.element()), (2, &[1, 2][..], Element::I16));
        assert_eq!(s.values(), [-3.0, 4.0, 500.0, -32768.0]);
    }

    #[test]
    fn a_non_finite_value_is_placed() {
        let raw = RawArray {
            shape: vec![2, 2],
            values: Typed::F64(vec![0.0, 1.0, 2.0, 1e300]),
        };
        let e = into_samples(at(), raw).unwrap_err().to_string();
        assert!(
            e.contains("f.npz, array `x`: sample 1, feature 1 (index [1, 1]): value 1e300"),
            "{e}"
        );
    }

    #[test]
    fn labels_are_integers_one_per_sample() {
        let raw = |shape: Vec<usize>, values| RawArray { shape, values };
        let l = into_labels(&at(), raw(vec![3, 1], Typed::F32(vec![1.0, -2.0, 0.0]))).unwrap();
        assert_eq!(l, [1, -2, 0]);
        let l = into_labels(&at(), raw(vec![2], Typed::U32(vec![u32::MAX, 0]))).unwrap();
        assert_eq!(l, [u32::MAX as i64, 0]);
        let e = into_labels(&at(), raw(vec![2], Typed::F64(vec![1.0, 1.5]))).unwrap_err();
        assert!(e.to_string().ends_with("label 1: label 1.5 is not an integer"), "{e}");
        let e = into_labels(&at(), raw(vec![1], Typed::F64(vec![f64::NAN]))).unwrap_err();
        assert!(matches!(e, DataError::BadLabel { .. }), "{e}");
        let e = into_labels(&at(), raw(vec![1], Typed::F64(vec![9.3e18]))).unwrap_err();
        assert!(matches!(e, DataError::BadLabel { .. }), "{e}");
        let e = into_labels(&at(), raw(vec![2, 2], Typed::U8(vec![0; 4]))).unwrap_err();
        assert!(matches!(e, DataError::LabelsShape { .. }), "{e}");
    }
}
