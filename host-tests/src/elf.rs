//! Flash and static RAM of a firmware ELF, from its allocated sections (what `size` reports);
//! the functions it holds, from its symbol table.

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};
use std::path::Path;

/// Where RAM starts on every board (mps2-an386, nRF52840, the microbit's nRF51822).
const RAM_START: u64 = 0x2000_0000;

/// Memory use of a firmware image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Bytes in flash: vector table, code, read-only data (the model among it), and the initial
    /// values of `.data`.
    pub flash: u64,
    /// Bytes of static RAM: `.data` and `.bss` (and `.uninit`); the stack comes on top.
    pub ram: u64,
}

/// The [`Sizes`] of the ELF at `path`.
pub fn sizes(path: &Path) -> Result<Sizes> {
    let data = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{}: not an ELF", path.display()))?;
    let mut sizes = Sizes { flash: 0, ram: 0 };
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else {
            continue;
        };
        if sh_flags & u64::from(object::elf::SHF_ALLOC) == 0 || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap_or_default();
        if section.address() < RAM_START {
            sizes.flash += section.size();
        } else {
            sizes.ram += section.size();
            // `.data` is copied from flash at start-up.
            if name == ".data" {
                sizes.flash += section.size();
            }
        }
    }
    Ok(sizes)
}

/// The names of the functions in the ELF at `path`, as its symbol table has them (mangled: a
/// Rust path's identifiers appear verbatim in them).
pub fn function_symbols(path: &Path) -> Result<Vec<String>> {
    let data = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{}: not an ELF", path.display()))?;
    Ok(file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .collect())
}
