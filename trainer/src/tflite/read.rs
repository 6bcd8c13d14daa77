//! A minimal, schema-free flatbuffer reader for the tests: follows offsets by the wire rules
//! (root offset, vtables, vectors, strings) so a test can read back what the writer put in each
//! field slot without any generated code. Panics on malformed input (tests only).

/// A finished flatbuffer.
pub struct Root<'a> {
    buf: &'a [u8],
}

impl<'a> Root<'a> {
    /// Wraps a finished flatbuffer.
    pub fn new(buf: &'a [u8]) -> Self {
        Root { buf }
    }

    /// The root table (a TFLite `Model`).
    pub fn model(&self) -> Table<'a> {
        Table {
            buf: self.buf,
            pos: read_u32(self.buf, 0) as usize,
        }
    }
}

fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(buf[at..at + 2].try_into().unwrap())
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().unwrap())
}

/// A table at a position of the buffer.
#[derive(Clone, Copy)]
pub struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Table<'a> {
    /// Where field `index`'s value lies, if present.
    fn field(&self, index: usize) -> Option<usize> {
        let vtable = (self.pos as i64 - i64::from(read_u32(self.buf, self.pos) as i32)) as usize;
        let vtable_len = usize::from(read_u16(self.buf, vtable));
        let slot = 4 + 2 * index;
        if slot + 2 > vtable_len {
            return None;
        }
        match read_u16(self.buf, vtable + slot) {
            0 => None,
            offset => Some(self.pos + usize::from(offset)),
        }
    }

    fn scalar<const N: usize>(&self, index: usize) -> Option<[u8; N]> {
        self.field(index).map(|at| self.buf[at..at + N].try_into().unwrap())
    }

    /// A `ubyte` field.
    pub fn u8(&self, index: usize) -> Option<u8> {
        self.scalar::<1>(index).map(|b| b[0])
    }

    /// A `byte` field.
    pub fn i8(&self, index: usize) -> Option<i8> {
        self.scalar::<1>(index).map(|b| b[0] as i8)
    }

    /// A `uint` field.
    pub fn u32(&self, index: usize) -> Option<u32> {
        self.scalar(index).map(u32::from_le_bytes)
    }

    /// An `int` field.
    pub fn i32(&self, index: usize) -> Option<i32> {
        self.scalar(index).map(i32::from_le_bytes)
    }

    /// A `float` field.
    pub fn f32(&self, index: usize) -> Option<f32> {
        self.scalar(index).map(f32::from_le_bytes)
    }

    /// The target of an offset field.
    fn target(&self, index: usize) -> Option<usize> {
        self.field(index).map(|at| at + read_u32(self.buf, at) as usize)
    }

    /// A table field.
    pub fn table(&self, index: usize) -> Option<Table<'a>> {
        self.target(index).map(|pos| Table { buf: self.buf, pos })
    }

    /// A vector field's element bytes, `size` bytes per element.
    fn vector(&self, index: usize, size: usize) -> Option<&'a [u8]> {
        self.target(index).map(|at| {
            let len = read_u32(self.buf, at) as usize;
            &self.buf[at + 4..at + 4 + len * size]
        })
    }

    /// A `[ubyte]` field.
    pub fn bytes(&self, index: usize) -> Option<&'a [u8]> {
        self.vector(index, 1)
    }

    /// A `string` field.
    pub fn string(&self, index: usize) -> Option<String> {
        self.bytes(index).map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    /// A vector-of-tables field (empty when absent).
    pub fn tables(&self, index: usize) -> Vec<Table<'a>> {
        let Some(at) = self.target(index) else {
            return Vec::new();
        };
        let len = read_u32(self.buf, at) as usize;
        (0..len)
            .map(|i| {
                let slot = at + 4 + 4 * i;
                Table {
                    buf: self.buf,
                    pos: slot + read_u32(self.buf, slot) as usize,
                }
            })
            .collect()
    }

    /// An `[int]` field (empty when absent).
    pub fn i32s(&self, index: usize) -> Vec<i32> {
        let b = self.vector(index, 4).unwrap_or_default();
        b.chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// A `[float]` field (empty when absent).
    pub fn f32s(&self, index: usize) -> Vec<f32> {
        let b = self.vector(index, 4).unwrap_or_default();
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// A `[long]` field (empty when absent).
    pub fn i64s(&self, index: usize) -> Vec<i64> {
        let b = self.vector(index, 8).unwrap_or_default();
        b.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}
