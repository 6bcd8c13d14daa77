//! Caller buffers as slices: checked for NULL, alignment and length before a slice is made, and
//! for overlap between the buffers of one call.

use crate::status::ae_status;
use core::mem::size_of;
use core::ops::Range;

/// The addresses of `len` values of `T` from `ptr`.
fn span<T>(ptr: *const T, len: usize) -> Range<usize> {
    let start = ptr as usize;
    start..start.saturating_add(len.saturating_mul(size_of::<T>()))
}

/// Whether two address ranges share a byte.
pub(crate) fn overlap(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end && !a.is_empty() && !b.is_empty()
}

/// A buffer handed in by the caller, not yet a slice.
pub(crate) struct Buffer<T> {
    ptr: *mut T,
    len: usize,
}

impl<T> Buffer<T> {
    /// `len` values at `ptr`; [`ae_status::AE_NULL_POINTER`] for NULL,
    /// [`ae_status::AE_MISALIGNED`] for a pointer not aligned for `T`.
    pub(crate) fn new(ptr: *mut T, len: usize) -> Result<Self, ae_status> {
        if ptr.is_null() {
            Err(ae_status::AE_NULL_POINTER)
        } else if !ptr.is_aligned() {
            Err(ae_status::AE_MISALIGNED)
        } else {
            Ok(Self { ptr, len })
        }
    }

    /// A read-only buffer.
    pub(crate) fn new_const(ptr: *const T, len: usize) -> Result<Self, ae_status> {
        Self::new(ptr.cast_mut(), len)
    }

    /// Its length in values.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Its addresses.
    pub(crate) fn span(&self) -> Range<usize> {
        span(self.ptr, self.len)
    }

    /// The values, read-only.
    ///
    /// # Safety
    /// The caller's promise: `len` initialised values of `T` at `ptr`, not written by anyone
    /// while the slice lives (the API's documented contract; lengths were checked against the
    /// model's before this is called, so `len` is a real buffer's length).
    pub(crate) unsafe fn slice<'a>(&self) -> &'a [T] {
        // SAFETY: non-null and aligned (checked in `new`), valid for `len` reads by the
        // caller's contract.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The values, writable.
    ///
    /// # Safety
    /// As [`Buffer::slice`], and no other reference to these bytes while the slice lives (the
    /// buffers of one call are checked not to overlap).
    pub(crate) unsafe fn slice_mut<'a>(&self) -> &'a mut [T] {
        // SAFETY: non-null and aligned (checked in `new`), valid for `len` writes and not
        // aliased by the caller's contract and the overlap checks.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
