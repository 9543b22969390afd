//! The error type shared by the `.BTF` and `.BTF.ext` parsers and the queries.

use crate::types::BtfKind;

/// Name of the `.BTF` section, as used in [`BtfError`] messages.
pub const BTF_SECTION: &str = ".BTF";
/// Name of the `.BTF.ext` section, as used in [`BtfError`] messages.
pub const BTF_EXT_SECTION: &str = ".BTF.ext";

/// Why a `.BTF` / `.BTF.ext` section was rejected, or why a query failed.
///
/// Byte offsets (`offset`) are always from the start of the ELF section named by `section`, never
/// from the start of a sub-section. Type ids are plain `u32`s so that ids outside the table can be
/// reported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// A read of `needed` bytes at `offset` goes past the end of the data.
    #[error("{section}: truncated at byte {offset}: {needed} bytes needed, {available} available")]
    Truncated { section: &'static str, offset: usize, needed: usize, available: usize },

    /// The magic number is neither `0xeb9f` nor its byte-swapped form.
    #[error("{section}: bad magic {magic:#06x} (expected 0xeb9f)")]
    BadMagic { section: &'static str, magic: u16 },

    /// The magic number is `0xeb9f` stored big-endian.
    #[error("{section}: big-endian BTF is not supported")]
    BigEndian { section: &'static str },

    /// The version byte is not 1.
    #[error("{section}: unsupported version {version} (only version 1 is known)")]
    BadVersion { section: &'static str, version: u8 },

    /// The flags byte is not 0 (no flags are defined).
    #[error("{section}: unsupported header flags {flags:#04x}")]
    BadFlags { section: &'static str, flags: u8 },

    /// `hdr_len` is shorter than the known header, or longer than the section.
    #[error("{section}: bad header length {hdr_len}: {reason}")]
    BadHeaderLen { section: &'static str, hdr_len: u32, reason: &'static str },

    /// `hdr_len` is longer than the known header and the extra bytes are not all zero: they would
    /// describe something this parser does not understand.
    #[error("{section}: unknown non-zero header field at byte {offset} (hdr_len {hdr_len})")]
    UnknownHeaderField { section: &'static str, offset: usize, hdr_len: u32 },

    /// A sub-section (`what`, e.g. "type", "string", "func_info") does not fit in the data after the
    /// header, or overlaps another one.
    #[error(
        "{section}: {what} section (offset {off}, length {len}) {reason} ({available} data bytes after the header)"
    )]
    BadSubsection {
        section: &'static str,
        what: &'static str,
        off: u32,
        len: u32,
        available: usize,
        reason: &'static str,
    },

    /// The string table is malformed (empty, not starting or not ending with a NUL byte, too large).
    #[error("{section}: invalid string table: {reason}")]
    BadStringTable { section: &'static str, reason: &'static str },

    /// A string offset is outside the string table, or the string there is not valid UTF-8 where a
    /// name is expected.
    #[error("{section}: bad string offset {offset}: {reason}")]
    BadString { section: &'static str, offset: u32, reason: &'static str },

    /// There are more types than BTF allows (`0xfffff`, like the kernel).
    #[error(".BTF: too many types (more than {limit})")]
    TooManyTypes { limit: u32 },

    /// Type `id` (at byte `offset` of `.BTF`) has a kind this parser does not know, so its length
    /// and therefore the rest of the type section cannot be decoded.
    #[error(".BTF: type {id} at byte {offset}: unknown kind {kind}")]
    UnknownKind { id: u32, offset: usize, kind: u8 },

    /// Type `id` is structurally invalid (e.g. an INT of size 3).
    #[error(".BTF: type {id}: {reason}")]
    BadType { id: u32, reason: String },

    /// `referenced_by` (a type id, or for `.BTF.ext` records the record's byte offset in
    /// `.BTF.ext`) names type `id`, which does not exist.
    #[error("{section}: type id {id} referenced by {referenced_by} does not exist")]
    BadTypeId { section: &'static str, id: u32, referenced_by: u32 },

    /// `referenced_by` names type `id`, whose kind is not allowed there.
    #[error("{section}: type {id} referenced by {referenced_by} is {found}, expected {expected}")]
    BadReference { section: &'static str, id: u32, referenced_by: u32, expected: &'static str, found: BtfKind },

    /// Type `id` is part of a reference loop (a typedef/modifier/array chain that comes back to
    /// itself, or a struct that contains itself by value).
    #[error(".BTF: type {id} is part of a reference loop")]
    Loop { id: u32 },

    /// A walk starting at type `id` went deeper than `limit` levels.
    #[error(".BTF: type {id}: nesting deeper than {limit} levels")]
    TooDeep { id: u32, limit: usize },

    /// A query would visit more than `limit` types starting at type `id` (a small, hostile table
    /// can describe an exponentially large tree of shared sub-types).
    #[error(".BTF: type {id}: query visits more than {limit} types")]
    TooComplex { id: u32, limit: usize },

    /// A query named a type id that does not exist.
    #[error(".BTF: no type with id {id}")]
    NoSuchType { id: u32 },

    /// Type `id` has no size (void, function, forward declaration, ...).
    #[error(".BTF: type {id} ({kind}) has no size")]
    NoSize { id: u32, kind: BtfKind },

    /// The size of type `id` does not fit in a `u32`.
    #[error(".BTF: size of type {id} overflows")]
    SizeOverflow { id: u32 },

    /// A query expected a type of another kind.
    #[error(".BTF: type {id} is {found}, expected {expected}")]
    WrongKind { id: u32, expected: &'static str, found: BtfKind },

    /// A member of a BTF-defined map definition does not follow libbpf's encoding.
    #[error(".BTF: map definition type {id}, field '{field}': {reason}")]
    MapDef { id: u32, field: String, reason: String },

    /// A `.BTF.ext` info sub-section (`what`) has a record size smaller than the known record or not
    /// a multiple of 4.
    #[error(".BTF.ext: {what} record size {rec_size} at byte {offset} is invalid (minimum {min}, multiple of 4)")]
    BadRecordSize { what: &'static str, offset: usize, rec_size: u32, min: u32 },

    /// A `.BTF.ext` group header claims zero records, or more records than fit in its sub-section.
    #[error(".BTF.ext: {what} group at byte {offset} has a bad record count {num_info}: {reason}")]
    BadRecordCount { what: &'static str, offset: usize, num_info: u32, reason: &'static str },

    /// A `.BTF.ext` record holds a value this parser cannot use.
    #[error(".BTF.ext: {what} record at byte {offset}: {reason}")]
    BadExtRecord { what: &'static str, offset: usize, reason: String },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = BtfError> = std::result::Result<T, E>;
