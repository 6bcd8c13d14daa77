//! Where a model's arrays live: borrowed from the model file's bytes on the device
//! ([`Borrowed`]), or owned as typed vectors on the host (`Owned`, with the `alloc` feature).
//!
//! The layer list ([`Layer`](crate::model::Layer)) is declared once, generic over its
//! [`Storage`]; both storages serialize to the same bytes (the model file's body), so a host tool
//! that builds an owned model writes exactly the file the device reads.

use core::fmt;
use serde::Serialize;

/// The array and string types of one storage. `'a` is the lifetime of the bytes a borrowed
/// model reads from (any lifetime for an owned one).
pub trait Storage<'a> {
    /// Int8 values (weights, shifts, tables): the bytes themselves on the wire.
    type I8: Clone + fmt::Debug + PartialEq + Serialize + ByteLen;
    /// I32 values (biases, multipliers): 4 little-endian bytes each on the wire.
    type I32: Clone + fmt::Debug + PartialEq + Serialize + ByteLen;
    /// U32 values (the input shape): 4 little-endian bytes each on the wire.
    type U32: Clone + fmt::Debug + PartialEq + Serialize + ByteLen + U32Values;
    /// F32 values (weight scales): 4 little-endian bytes each on the wire.
    type F32: Clone + fmt::Debug + PartialEq + Serialize + ByteLen;
    /// The model's name.
    type Str: Clone + fmt::Debug + PartialEq + Serialize + ByteLen;
}

/// Bytes an array or string takes in the model file (without its length prefix).
pub trait ByteLen {
    /// The byte count.
    fn byte_len(&self) -> usize;
}

impl ByteLen for &[u8] {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl ByteLen for &str {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

/// An array of u32 values, borrowed bytes or owned words, read one value at a time.
pub trait U32Values {
    /// How many values (a shorter tail of bytes does not count).
    fn count(&self) -> usize;
    /// Value `index`, if there is one.
    fn value(&self, index: usize) -> Option<u32>;
}

impl U32Values for &[u8] {
    fn count(&self) -> usize {
        self.len() / 4
    }

    fn value(&self, index: usize) -> Option<u32> {
        let bytes = self.get(index.checked_mul(4)?..)?.get(..4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// Arrays borrowed from a model file's bytes, whatever their alignment: what the device loader
/// ([`Model::from_bytes`](crate::Model::from_bytes)) gives, with no copy and no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Borrowed;

impl<'a> Storage<'a> for Borrowed {
    type I8 = &'a [u8];
    type I32 = &'a [u8];
    type U32 = &'a [u8];
    type F32 = &'a [u8];
    type Str = &'a str;
}

#[cfg(feature = "alloc")]
pub use owned::{Owned, Word, Words};

#[cfg(feature = "alloc")]
mod owned {
    use super::Storage;
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::fmt;
    use core::marker::PhantomData;
    use core::ops::{Deref, DerefMut};
    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    /// Typed arrays owned on the heap, for host tools that build, read or change models
    /// (`alloc` feature). Serialized with postcard they are the model file's bytes; with a
    /// human-readable format (JSON) they are plain lists of numbers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Owned;

    impl super::ByteLen for Vec<i8> {
        fn byte_len(&self) -> usize {
            self.len()
        }
    }

    impl super::ByteLen for String {
        fn byte_len(&self) -> usize {
            self.len()
        }
    }

    impl super::U32Values for Words<u32> {
        fn count(&self) -> usize {
            self.0.len()
        }

        fn value(&self, index: usize) -> Option<u32> {
            self.0.get(index).copied()
        }
    }

    impl<T> super::ByteLen for Words<T> {
        fn byte_len(&self) -> usize {
            self.0.len().saturating_mul(4)
        }
    }

    impl Storage<'_> for Owned {
        type I8 = Vec<i8>;
        type I32 = Words<i32>;
        type U32 = Words<u32>;
        type F32 = Words<f32>;
        type Str = String;
    }

    /// A 4-byte value stored little-endian in a model file.
    pub trait Word: Copy + fmt::Debug + PartialEq + Serialize + for<'de> Deserialize<'de> {
        /// Its 4 little-endian bytes.
        fn to_le(self) -> [u8; 4];
        /// The value of 4 little-endian bytes.
        fn from_le(bytes: [u8; 4]) -> Self;
    }

    impl Word for i32 {
        fn to_le(self) -> [u8; 4] {
            self.to_le_bytes()
        }
        fn from_le(bytes: [u8; 4]) -> Self {
            i32::from_le_bytes(bytes)
        }
    }

    impl Word for u32 {
        fn to_le(self) -> [u8; 4] {
            self.to_le_bytes()
        }
        fn from_le(bytes: [u8; 4]) -> Self {
            u32::from_le_bytes(bytes)
        }
    }

    impl Word for f32 {
        fn to_le(self) -> [u8; 4] {
            self.to_le_bytes()
        }
        fn from_le(bytes: [u8; 4]) -> Self {
            f32::from_le_bytes(bytes)
        }
    }

    /// An owned array of i32, u32 or f32 that is a byte string of little-endian words in the model
    /// file (and a list of numbers in JSON). Dereferences to its `Vec`.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Words<T>(pub Vec<T>);

    impl<T> Deref for Words<T> {
        type Target = Vec<T>;
        fn deref(&self) -> &Vec<T> {
            &self.0
        }
    }

    impl<T> DerefMut for Words<T> {
        fn deref_mut(&mut self) -> &mut Vec<T> {
            &mut self.0
        }
    }

    impl<'w, T> IntoIterator for &'w Words<T> {
        type Item = &'w T;
        type IntoIter = core::slice::Iter<'w, T>;
        fn into_iter(self) -> Self::IntoIter {
            self.0.iter()
        }
    }

    impl<T> From<Vec<T>> for Words<T> {
        fn from(v: Vec<T>) -> Self {
            Words(v)
        }
    }

    impl<T> FromIterator<T> for Words<T> {
        fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
            Words(iter.into_iter().collect())
        }
    }

    impl<T: Word> Words<T> {
        /// The words of a byte string of little-endian words (a shorter tail is ignored).
        pub fn from_le_bytes(bytes: &[u8]) -> Self {
            bytes
                .chunks_exact(4)
                .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                .map(T::from_le)
                .collect()
        }
    }

    impl<T: Word> Serialize for Words<T> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if serializer.is_human_readable() {
                self.0.serialize(serializer)
            } else {
                let bytes: Vec<u8> = self.0.iter().flat_map(|w| w.to_le()).collect();
                serializer.serialize_bytes(&bytes)
            }
        }
    }

    impl<'de, T: Word> Deserialize<'de> for Words<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Bytes<T>(PhantomData<T>);
            impl<'de, T: Word> Visitor<'de> for Bytes<T> {
                type Value = Words<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a byte string of little-endian 4-byte words")
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Words<T>, E> {
                    if !v.len().is_multiple_of(4) {
                        return Err(E::invalid_length(v.len(), &self));
                    }
                    Ok(Words::from_le_bytes(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words<T>, A::Error> {
                    let mut bytes = Vec::new();
                    while let Some(b) = seq.next_element::<u8>()? {
                        bytes.push(b);
                    }
                    self.visit_bytes(&bytes)
                }
            }
            if deserializer.is_human_readable() {
                Vec::<T>::deserialize(deserializer).map(Words)
            } else {
                deserializer.deserialize_bytes(Bytes(PhantomData))
            }
        }
    }
}
