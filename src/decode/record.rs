//! The layout interpreter: turns one EventData body (record header + record) into slots that
//! point into the bytes. Nothing is copied; a decoded [`Record`] borrows the message buffer and the
//! decoder's reusable slot arena.

use std::fmt;

use super::catalog::Catalog;
use super::schema::*;
use super::value::{Value, be_uint};

/// The record header at the start of every EventData body (reference 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub record_type: u32,
    pub record_length: u32,
    /// 0 when the FMC sent no archive timestamp (metadata records).
    pub archive_timestamp: u32,
    /// The reserved word eNcore calls `checksum`.
    pub reserved: u32,
    /// 8, or 16 with the archive timestamp and reserved word.
    pub header_len: usize,
    /// A netmap (domain) id found in the upper half of the record-type word (unverified FMC
    /// behaviour, reference 6.1); the record type is then the lower half.
    pub netmap_id: Option<u16>,
}

impl RecordHeader {
    /// Parses the header, deciding from the lengths (like eNcore) whether the archive timestamp
    /// is present.
    pub fn parse(body: &[u8]) -> Result<RecordHeader, DecodeError> {
        if body.len() < 8 {
            return Err(DecodeError::TooShort { len: body.len() });
        }
        let raw_type = be32(body, 0);
        let record_length = be32(body, 4);
        let (record_type, netmap_id) = if raw_type > 0xFFFF {
            (raw_type & 0xFFFF, Some((raw_type >> 16) as u16))
        } else {
            (raw_type, None)
        };
        let data_len = body.len() - 8;
        let (header_len, archive_timestamp, reserved) = if data_len == record_length as usize {
            (8, 0, 0)
        } else if data_len == record_length as usize + 8 {
            (16, be32(body, 8), be32(body, 12))
        } else {
            return Err(DecodeError::LengthMismatch {
                record_type,
                record_length,
                body_len: body.len(),
            });
        };
        Ok(RecordHeader {
            record_type,
            record_length,
            archive_timestamp,
            reserved,
            header_len,
            netmap_id,
        })
    }
}

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    TooShort {
        len: usize,
    },
    LengthMismatch {
        record_type: u32,
        record_length: u32,
        body_len: usize,
    },
    Malformed {
        record_type: u32,
        field: String,
        offset: usize,
        reason: &'static str,
    },
}

impl DecodeError {
    pub fn record_type(&self) -> Option<u32> {
        match self {
            DecodeError::TooShort { .. } => None,
            DecodeError::LengthMismatch { record_type, .. }
            | DecodeError::Malformed { record_type, .. } => Some(*record_type),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort { len } => {
                write!(
                    f,
                    "event data of {len} bytes is shorter than a record header"
                )
            }
            DecodeError::LengthMismatch {
                record_type,
                record_length,
                body_len,
            } => write!(
                f,
                "record type {record_type}: record length {record_length} does not fit a message body of {body_len} bytes"
            ),
            DecodeError::Malformed {
                record_type,
                field,
                offset,
                reason,
            } => write!(
                f,
                "record type {record_type}: {reason} at field {field} (record offset {offset})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A decoded record. Field values are read from `data` through the slots on demand.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    pub header: RecordHeader,
    /// The whole EventData body (header included): the record's identity is computed over it.
    pub body: &'a [u8],
    /// The record data after the header; slot offsets are relative to it.
    pub data: &'a [u8],
    /// `None` for a record type the catalog does not know.
    pub schema: Option<&'static RecordSchema>,
    /// The scope of the chosen layout variant.
    pub scope: Option<&'static Scope>,
    pub slots: &'a [Slot],
    /// Bytes after the last field the layout knows (a newer, longer version); ignored.
    pub trailing: usize,
}

impl<'a> Record<'a> {
    pub fn record_type(&self) -> u32 {
        self.header.record_type
    }

    pub fn is_known(&self) -> bool {
        self.schema.is_some()
    }

    /// The value of a root-scope field.
    #[inline(always)]
    pub fn get(&self, slot: u16) -> Option<Value<'a>> {
        let scope = self.scope?;
        self.value_at(scope, 0, slot)
    }

    /// The value of field `slot` of the scope instance whose slots start at `base`.
    #[inline(always)]
    pub fn value_at(&self, scope: &Scope, base: usize, slot: u16) -> Option<Value<'a>> {
        let bytes = self.bytes_at(base + slot as usize)?;
        Value::from_field(*scope.kinds.get(slot as usize)?, bytes)
    }

    /// The bytes of the field in arena slot `index`, if present.
    #[inline(always)]
    fn bytes_at(&self, index: usize) -> Option<&'a [u8]> {
        let s = *self.slots.get(index)?;
        if !s.is_present() {
            return None;
        }
        self.data
            .get(s.off as usize..(s.off as usize + s.len as usize))
    }

    /// Whether a field (of any kind) is present.
    pub fn present_at(&self, base: usize, slot: u16) -> bool {
        self.slots
            .get(base + slot as usize)
            .is_some_and(|s| s.is_present())
    }

    /// Arena bases of the items of list field `slot` in the scope instance at `base`.
    #[inline]
    pub fn list_items(&self, base: usize, slot: u16, item_scope: &Scope) -> ListItems<'a> {
        let chain = self.slots.get(base + slot as usize + 1).copied();
        let (next, remaining) = match chain {
            Some(s) if s.is_present() && s.off != ABSENT => (s.off as usize, s.len),
            _ => (usize::MAX, 0),
        };
        ListItems {
            slots: self.slots,
            next,
            remaining,
            link: item_scope.fields.len(),
        }
    }

    /// The value a [`FieldRef`] points to.
    #[inline(always)]
    pub fn get_ref(&self, r: FieldRef) -> Option<Value<'a>> {
        // Inlined where names and mappings read fields (many per record): root fields are
        // most of them, list items go through a call.
        match r {
            FieldRef::Root(slot) => self.get(slot),
            FieldRef::FirstItem { .. } => self.first_item_value(r),
        }
    }

    #[inline(never)]
    fn first_item_value(&self, r: FieldRef) -> Option<Value<'a>> {
        let FieldRef::FirstItem {
            list,
            item_scope,
            slot,
        } = r
        else {
            return self.get_ref(r);
        };
        let scope = crate::decode::catalog().scope(item_scope);
        let base = self.list_items(0, list, scope).next()?;
        self.value_at(scope, base, slot)
    }

    /// The value of a root-scope field the caller knows to be an integer (a mapping line
    /// compiled for this layout), read without going through [`Value`].
    #[inline(always)]
    pub fn root_uint(&self, slot: u16) -> Option<u64> {
        self.bytes_at(slot as usize).map(be_uint)
    }

    /// Reads the u32-or-smaller integer field at `slot` of the root scope.
    pub fn int(&self, slot: u16) -> Option<u64> {
        match self.get(slot)? {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }
}

/// Iterator over the arena bases of a list's items.
pub struct ListItems<'a> {
    slots: &'a [Slot],
    next: usize,
    remaining: u32,
    link: usize,
}

impl Iterator for ListItems<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 || self.next == usize::MAX {
            return None;
        }
        let base = self.next;
        self.remaining -= 1;
        self.next = match self.slots.get(base + self.link) {
            Some(s) if s.off != ABSENT => s.off as usize,
            _ => usize::MAX,
        };
        Some(base)
    }
}

/// Decodes records with a reusable slot arena. One per decoding thread.
pub struct Decoder {
    catalog: &'static Catalog,
    arena: Vec<Slot>,
    /// Open blocks: (start, bound outside the block, named group slot).
    blocks: Vec<(usize, usize, Option<u16>)>,
}

/// An interpreter failure, before it is given the record type.
struct Fail {
    slot: u16,
    scope: ScopeId,
    offset: usize,
    reason: &'static str,
}

impl Decoder {
    pub fn new(catalog: &'static Catalog) -> Decoder {
        Decoder {
            catalog,
            arena: Vec::with_capacity(512),
            blocks: Vec::with_capacity(16),
        }
    }

    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    /// Decodes one EventData body. An unknown record type is not an error: the record comes back
    /// with `schema: None` and its raw data.
    pub fn decode<'a>(&'a mut self, body: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        let header = RecordHeader::parse(body)?;
        let data = &body[header.header_len..];
        self.arena.clear();
        self.blocks.clear();
        let Some(schema) = self.catalog.record(header.record_type) else {
            return Ok(Record {
                header,
                body,
                data,
                schema: None,
                scope: None,
                slots: &self.arena,
                trailing: 0,
            });
        };
        let variant = match select_variant(schema, data) {
            Some(v) => v,
            None => {
                return Err(DecodeError::Malformed {
                    record_type: header.record_type,
                    field: "(block type)".into(),
                    offset: discovery_len(data),
                    reason: "unknown block type for this record",
                });
            }
        };
        let catalog = self.catalog;
        let scope = catalog.scope(variant.scope);
        fill_absent(&mut self.arena, scope.slot_count());
        let end = match self.run(variant.scope, 0, data, 0, data.len()) {
            Ok(end) => end,
            Err(fail) => {
                let fscope = catalog.scope(fail.scope);
                return Err(DecodeError::Malformed {
                    record_type: header.record_type,
                    field: fscope
                        .fields
                        .get(fail.slot as usize)
                        .map(|f| f.path.to_string())
                        .unwrap_or_default(),
                    offset: fail.offset,
                    reason: fail.reason,
                });
            }
        };
        Ok(Record {
            header,
            body,
            data,
            schema: Some(schema),
            scope: Some(scope),
            slots: &self.arena,
            trailing: data.len() - end,
        })
    }

    /// Runs the ops of `scope_id` for the instance whose slots start at `base`; returns the
    /// position after the last byte consumed.
    fn run(
        &mut self,
        scope_id: ScopeId,
        base: usize,
        data: &[u8],
        mut pos: usize,
        mut bound: usize,
    ) -> Result<usize, Fail> {
        let scope = self.catalog.scope(scope_id);
        let ops = &scope.ops;
        let block_floor = self.blocks.len();
        let fail = |slot: u16, offset: usize, reason: &'static str| Fail {
            slot,
            scope: scope_id,
            offset,
            reason,
        };
        let mut i = 0;
        while i < ops.len() {
            match ops[i] {
                Op::Scalar { slot, scalar } => {
                    if pos < bound {
                        // A run of fixed-width fields that fits: all its slots at once.
                        if let Some(run) = scope.runs.get(i).filter(|r| r.count > 0)
                            && bound - pos >= run.width as usize
                        {
                            fill_run(&mut self.arena, base, scope, run, pos);
                            pos += run.width as usize;
                            i += run.count as usize;
                            continue;
                        }
                        let w = scalar.width();
                        if bound - pos < w {
                            return Err(fail(slot, pos, "field runs past the end of its block"));
                        }
                        self.arena[base + slot as usize] = slot_at(pos, w);
                        pos += w;
                    }
                }
                Op::Var {
                    slot,
                    len_slot,
                    adjust,
                    ..
                } => {
                    // An empty field is present even where its block ends (eNcore: "").
                    let ls = self.arena[base + len_slot as usize];
                    if ls.is_present() {
                        let n = read_uint(data, ls) as i64 + adjust as i64;
                        if n < 0 {
                            return Err(fail(slot, pos, "negative length"));
                        }
                        let n = n as usize;
                        if n == 0 || pos < bound {
                            if bound - pos < n {
                                return Err(fail(
                                    slot,
                                    pos,
                                    "string runs past the end of its block",
                                ));
                            }
                            self.arena[base + slot as usize] = slot_at(pos, n);
                            pos += n;
                        }
                    }
                }
                Op::Discovery { base: d } => {
                    if pos < bound {
                        pos = self
                            .discovery(base + d as usize, data, pos, bound)
                            .map_err(|(off, reason)| fail(d, off, reason))?;
                    }
                }
                Op::BlockBegin { group, end_op, .. } => {
                    if pos >= bound {
                        i = end_op as usize + 1;
                        continue;
                    }
                    // A string block whose header and length fit: its four slots at once.
                    if let Some(Some(sb)) = scope.string_blocks.get(i)
                        && bound - pos >= 8
                    {
                        let len = be32(data, pos + 4) as usize;
                        if len >= 8 && bound - pos >= len {
                            let arena = &mut self.arena[base..];
                            arena[sb.type_slot as usize] = slot_at(pos, 4);
                            arena[sb.len_slot as usize] = slot_at(pos + 4, 4);
                            arena[sb.data_slot as usize] = slot_at(pos + 8, len - 8);
                            if let Some(g) = sb.group {
                                arena[g as usize] = slot_at(pos, len);
                            }
                            pos += len;
                            i = sb.next as usize;
                            continue;
                        }
                    }
                    // The bound is set by BlockBound once the length field is read.
                    self.blocks.push((pos, bound, group));
                }
                Op::BlockBound { len_slot } => {
                    let ls = self.arena[base + len_slot as usize];
                    let Some(&(start, _, group)) = self.blocks.last() else {
                        return Err(fail(len_slot, pos, "block bound without a block"));
                    };
                    if !ls.is_present() {
                        return Err(fail(len_slot, pos, "block header is incomplete"));
                    }
                    let len = read_uint(data, ls) as usize;
                    if len < 8 {
                        return Err(fail(
                            len_slot,
                            start,
                            "block length is smaller than its header",
                        ));
                    }
                    if bound - start < len {
                        return Err(fail(
                            len_slot,
                            start,
                            "block length runs past the end of its container",
                        ));
                    }
                    bound = start + len;
                    if let Some(g) = group {
                        self.arena[base + g as usize] = slot_at(start, len);
                    }
                }
                Op::BlockEnd => {
                    if let Some((_, outer, _)) = self.blocks.pop() {
                        // Skip bytes a newer block version appends after the fields we know.
                        pos = bound;
                        bound = outer;
                    }
                }
                Op::List {
                    slot, item, header, ..
                } => {
                    if pos < bound {
                        pos = self.list(scope_id, base, slot, item, header, data, pos, bound)?;
                    }
                }
            }
            i += 1;
        }
        // Unwind blocks this scope opened but did not close (cannot happen with a well-formed
        // program, but keeps the stack sane on any input).
        self.blocks.truncate(block_floor);
        Ok(pos)
    }

    #[allow(clippy::too_many_arguments)]
    fn list(
        &mut self,
        outer_scope: ScopeId,
        base: usize,
        slot: u16,
        item: ScopeId,
        header: ItemHeader,
        data: &[u8],
        pos: usize,
        bound: usize,
    ) -> Result<usize, Fail> {
        let fail = |offset: usize, reason: &'static str| Fail {
            slot,
            scope: outer_scope,
            offset,
            reason,
        };
        if bound - pos < 8 {
            return Err(fail(pos, "list header runs past the end of its block"));
        }
        let list_len = be32(data, pos + 4) as usize;
        if list_len < 8 {
            return Err(fail(pos, "list length is smaller than its header"));
        }
        if bound - pos < list_len {
            return Err(fail(pos, "list runs past the end of its block"));
        }
        self.arena[base + slot as usize] = slot_at(pos, list_len);
        let end = pos + list_len;
        let item_scope = self.catalog.scope(item);
        let link = item_scope.fields.len();
        let width = item_scope.slot_count();
        let mut p = pos + 8;
        let mut first = ABSENT;
        let mut prev_link: Option<usize> = None;
        let mut count = 0u32;
        while p < end {
            let ibase = self.arena.len();
            if ibase + width > u32::MAX as usize / 2 {
                return Err(fail(p, "too many list items"));
            }
            fill_absent(&mut self.arena, width);
            let (start, item_end) = match header {
                ItemHeader::Detect(number) if end - p >= 8 && be32(data, p) == number => {
                    let l = be32(data, p + 4) as usize;
                    if l >= 8 && end - p >= l {
                        (p + 8, p + l)
                    } else {
                        (p, end)
                    }
                }
                _ => (p, end),
            };
            let q = self.run(item, ibase, data, start, item_end)?;
            let q = if item_end != end { item_end } else { q };
            if q <= p {
                return Err(fail(p, "list item consumed no bytes"));
            }
            match prev_link {
                Some(l) => self.arena[l].off = ibase as u32,
                None => first = ibase as u32,
            }
            prev_link = Some(ibase + link);
            count += 1;
            p = q;
        }
        self.arena[base + slot as usize + 1] = Slot {
            off: first,
            len: count,
        };
        Ok(end)
    }

    fn discovery(
        &mut self,
        at: usize,
        data: &[u8],
        pos: usize,
        bound: usize,
    ) -> Result<usize, (usize, &'static str)> {
        use discovery::*;
        if bound - pos < FIXED_LEN {
            return Err((pos, "discovery header runs past the end of the record"));
        }
        let a = &mut self.arena[at..at + SLOTS as usize];
        let layout: [(u16, usize, usize); 11] = [
            (DEVICE_ID, 0, 4),
            (LEGACY_IP, 4, 4),
            (MAC, 8, 6),
            (HAS_IPV6, 14, 1),
            (RESERVED, 15, 1),
            (EVENT_SECOND, 16, 4),
            (EVENT_MICROSECOND, 20, 4),
            (EVENT_TYPE, 24, 4),
            (EVENT_SUBTYPE, 28, 4),
            (FILE_NUMBER, 32, 4),
            (FILE_POSITION, 36, 4),
        ];
        for (s, off, w) in layout {
            a[s as usize] = slot_at(pos + off, w);
        }
        if data[pos + 14] == 1 {
            if bound - pos < FIXED_LEN + 16 {
                return Err((
                    pos + FIXED_LEN,
                    "discovery header IPv6 address runs past the end",
                ));
            }
            a[HOST_IP as usize] = slot_at(pos + FIXED_LEN, 16);
            Ok(pos + FIXED_LEN + 16)
        } else {
            a[HOST_IP as usize] = slot_at(pos + 4, 4);
            Ok(pos + FIXED_LEN)
        }
    }
}

/// Appends `n` absent slots: a copy from a ready block (`memcpy`) rather than a store per slot.
#[inline(always)]
fn fill_absent(arena: &mut Vec<Slot>, n: usize) {
    static ABSENT_SLOTS: [Slot; 256] = [ABSENT_SLOT; 256];
    match ABSENT_SLOTS.get(..n) {
        Some(block) => arena.extend_from_slice(block),
        None => arena.resize(arena.len() + n, ABSENT_SLOT),
    }
}

/// Fills a run's slots: its template with `pos` added to each offset (a loop the compiler
/// turns into vector adds).
#[inline(always)]
fn fill_run(arena: &mut [Slot], base: usize, scope: &Scope, run: &FixedRun, pos: usize) {
    let count = run.count as usize;
    let first = run.first as usize;
    let at = base + run.slot as usize;
    let (Some(dst), Some(template)) = (
        arena.get_mut(at..at + count),
        scope.run_slots.get(first..first + count),
    ) else {
        return;
    };
    let pos = pos as u32;
    for (d, t) in dst.iter_mut().zip(template) {
        *d = Slot {
            off: t.off + pos,
            len: t.len,
        };
    }
}

fn select_variant<'s>(schema: &'s RecordSchema, data: &[u8]) -> Option<&'s Variant> {
    if schema.variants.len() == 1 && schema.variants[0].selector.is_none() {
        return schema.variants.first();
    }
    let at = discovery_len(data);
    let block_type = data.get(at..at + 4).map(|b| be32(b, 0))?;
    schema
        .variants
        .iter()
        .find(|v| v.selector == Some(block_type))
}

fn discovery_len(data: &[u8]) -> usize {
    if data.get(14) == Some(&1) {
        discovery::FIXED_LEN + 16
    } else {
        discovery::FIXED_LEN
    }
}

#[inline]
fn slot_at(pos: usize, len: usize) -> Slot {
    Slot {
        off: pos as u32,
        len: len as u32,
    }
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a big-endian unsigned integer of 1, 2, 4 or 8 bytes.
#[inline]
pub(crate) fn read_uint(data: &[u8], s: Slot) -> u64 {
    be_uint(&data[s.off as usize..s.off as usize + s.len as usize])
}
