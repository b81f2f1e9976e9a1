//! The compiled form of the record catalog: what the interpreter in `record.rs` runs.
//!
//! Every record type (and every block used as a list item) compiles to a [`Scope`]: a table of
//! fields (one slot per field, in layout order) and a flat program of [`Op`]s that fills the
//! slots from the bytes. Mapping plans refer to fields by slot index, so looking a field up costs
//! nothing per record.

use std::collections::HashMap;

/// Where a field's bytes are, relative to the record data. `len == ABSENT` when the record ended
/// before the field (older, shorter layouts) or the field was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub off: u32,
    pub len: u32,
}

pub const ABSENT: u32 = u32::MAX;
pub(crate) const ABSENT_SLOT: Slot = Slot {
    off: ABSENT,
    len: ABSENT,
};

impl Slot {
    pub fn is_present(self) -> bool {
        self.len != ABSENT
    }
}

/// Fixed-width wire types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    U8,
    U16,
    U32,
    U64,
    /// 16 raw bytes, shown as hex.
    U128,
    /// 20 raw bytes, shown as hex.
    U160,
    /// 32 raw bytes, shown as hex.
    U256,
    Ipv4,
    /// 16 bytes; IPv4-mapped addresses are shown as IPv4.
    Ipv6,
    Mac,
    Uuid,
}

impl Scalar {
    pub const fn width(self) -> usize {
        match self {
            Scalar::U8 => 1,
            Scalar::U16 => 2,
            Scalar::U32 | Scalar::Ipv4 => 4,
            Scalar::U64 => 8,
            Scalar::U128 | Scalar::Ipv6 | Scalar::Uuid => 16,
            Scalar::U160 => 20,
            Scalar::U256 => 32,
            Scalar::Mac => 6,
        }
    }

    pub fn from_name(name: &str) -> Option<Scalar> {
        Some(match name {
            "u8" => Scalar::U8,
            "u16" => Scalar::U16,
            "u32" => Scalar::U32,
            "u64" => Scalar::U64,
            "u128" => Scalar::U128,
            "u160" => Scalar::U160,
            "u256" => Scalar::U256,
            "ipv4" => Scalar::Ipv4,
            "ipv6" => Scalar::Ipv6,
            "mac" => Scalar::Mac,
            "uuid" => Scalar::Uuid,
            _ => return None,
        })
    }

    pub const fn is_integer(self) -> bool {
        matches!(self, Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64)
    }
}

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Scalar(Scalar),
    /// An address whose width is decided by the data (the discovery header's host address:
    /// the IPv6 field when present, else the legacy IPv4 field).
    Ip,
    /// Variable-length text (UTF-8 expected, not guaranteed).
    Text,
    /// Variable-length binary payload.
    Bytes,
    /// A named nested block: its children have this slot as `parent`.
    Group,
    /// A list: the slot covers the list header; the next slot (`ListItems`) chains the items.
    List,
    /// Hidden companion of a `List` slot: `off` = arena index of the first item, `len` = count.
    ListItems,
}

/// One field of a scope.
#[derive(Clone, Debug)]
pub struct FieldInfo {
    /// Name within its parent object (as in the reference catalog).
    pub name: Box<str>,
    /// Dotted path from the scope root, e.g. `hostProfile.ipAddress` or `clientUrl.data`.
    pub path: Box<str>,
    pub kind: FieldKind,
    /// Slot of the enclosing named block, or `None` at the scope root.
    pub parent: Option<u16>,
    /// Wire fields that eNcore's output (and so users' content) never shows.
    pub hidden: bool,
    /// For `List`: the scope of its items.
    pub item_scope: Option<ScopeId>,
}

pub type ScopeId = u16;

/// How a list item begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemHeader {
    /// The item block has its own type/length header, part of its layout.
    InLayout,
    /// The catalog gives the block no header, but an FMC may still send one: an item that starts
    /// with this block number and a plausible length is bounded by that header.
    Detect(u32),
}

/// One interpreter instruction.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Scalar {
        slot: u16,
        scalar: Scalar,
    },
    /// Variable-length field whose byte count is `slots[len_slot] + adjust`.
    Var {
        slot: u16,
        len_slot: u16,
        adjust: i32,
        binary: bool,
    },
    /// The discovery event header: fills 12 consecutive slots from `base`.
    Discovery {
        base: u16,
    },
    /// Start of a block with a header: series-`series` block `number`. `group` is its named slot
    /// (None when inline). `end_op` is the index of the matching `BlockEnd` (used to skip an
    /// absent block).
    BlockBegin {
        group: Option<u16>,
        end_op: u16,
        series: u8,
        number: u32,
    },
    /// After the block's type and length fields: bound the block by `slots[len_slot]`.
    BlockBound {
        len_slot: u16,
    },
    BlockEnd,
    /// A list; its items are decoded with `item` scope (series-`series` block `number`).
    List {
        slot: u16,
        item: ScopeId,
        header: ItemHeader,
        series: u8,
        number: u32,
    },
}

/// Slots filled by `Op::Discovery`, relative to its base.
pub mod discovery {
    pub const DEVICE_ID: u16 = 0;
    pub const LEGACY_IP: u16 = 1;
    pub const MAC: u16 = 2;
    pub const HAS_IPV6: u16 = 3;
    pub const RESERVED: u16 = 4;
    pub const EVENT_SECOND: u16 = 5;
    pub const EVENT_MICROSECOND: u16 = 6;
    pub const EVENT_TYPE: u16 = 7;
    pub const EVENT_SUBTYPE: u16 = 8;
    pub const FILE_NUMBER: u16 = 9;
    pub const FILE_POSITION: u16 = 10;
    pub const HOST_IP: u16 = 11;
    pub const SLOTS: u16 = 12;
    /// Bytes of the fixed part; 16 more follow when the IPv6 flag is 1.
    pub const FIXED_LEN: usize = 40;
}

/// A compiled layout: the record body of one record type (or variant), or one list item block.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub fields: Vec<FieldInfo>,
    pub ops: Vec<Op>,
    /// Path → slot (the last field with that path wins, as in eNcore's dictionaries).
    pub by_path: HashMap<Box<str>, u16>,
    /// The fields' kinds alone, packed: what reading a value needs (hot path).
    pub kinds: Vec<FieldKind>,
    /// Extra slot at the end of a list item's slots that links to the next item.
    pub is_item: bool,
    /// Parallel to `ops`: for an `Op::Scalar` that starts a run of consecutive fixed-width
    /// fields, the run (see [`FixedRun`]); empty runs elsewhere. Filled by [`Scope::find_runs`].
    pub runs: Vec<FixedRun>,
    /// The slots of all runs as they are filled when a run starts at offset 0, each run's
    /// contiguous: the interpreter adds the run's position to each offset.
    pub run_slots: Vec<Slot>,
    /// Parallel to `ops`: for an `Op::BlockBegin` that opens a string (or BLOB) block, the
    /// block's slots (see [`StringBlock`]); `None` elsewhere. Filled by
    /// [`Scope::find_string_blocks`].
    pub string_blocks: Vec<Option<StringBlock>>,
}

/// A block that is a type, a length and data of the length minus 8 (a string or BLOB block;
/// a connection record has eight): the six ops `BlockBegin`, type, length, `BlockBound`, `Var`,
/// `BlockEnd`. When the header fits and the length fits its container, the interpreter fills
/// the four slots at once and goes on at `next`; otherwise it runs the ops one by one, so the
/// result (and any error) is the same.
#[derive(Clone, Copy, Debug)]
pub struct StringBlock {
    pub group: Option<u16>,
    pub type_slot: u16,
    pub len_slot: u16,
    pub data_slot: u16,
    /// The op after the block's `BlockEnd`.
    pub next: u16,
}

/// Consecutive `Op::Scalar`s with consecutive slots (a connection record has runs of 40
/// fields): when all of them fit before the bound, the interpreter fills their slots in one
/// tight loop (a copy of the template with the position added) instead of dispatching on each
/// op. When they do not all fit it runs the ops one by one, so the result is the same.
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedRun {
    /// First entry in `Scope::run_slots`.
    pub first: u32,
    /// Ops (fields) in the run; 0 when the op starts no run.
    pub count: u16,
    /// Slot of the run's first field; the others follow it.
    pub slot: u16,
    /// Bytes of the whole run.
    pub width: u32,
}

impl Scope {
    /// Slots one instance of this scope occupies in the arena.
    pub fn slot_count(&self) -> usize {
        self.fields.len() + usize::from(self.is_item)
    }

    /// The slot of a field by dotted path. A string block can be named by its own path
    /// (`clientUrl`) as well as by its text (`clientUrl.data`).
    pub fn find(&self, path: &str) -> Option<u16> {
        let slot = *self.by_path.get(path)?;
        match self.fields[slot as usize].kind {
            FieldKind::Group => self.string_data(slot).or(Some(slot)),
            _ => Some(slot),
        }
    }

    /// Finds the runs of consecutive `Op::Scalar`s (two or more, with consecutive slots) for
    /// the interpreter's fast path.
    pub fn find_runs(&mut self) {
        self.runs = vec![FixedRun::default(); self.ops.len()];
        self.run_slots.clear();
        let mut i = 0;
        while i < self.ops.len() {
            let start = i;
            let first = self.run_slots.len();
            let mut width = 0u32;
            let mut first_slot = None;
            while let Some(&Op::Scalar { slot, scalar }) = self.ops.get(i) {
                let first_slot = *first_slot.get_or_insert(slot);
                if slot as usize != first_slot as usize + (i - start) {
                    break;
                }
                let w = scalar.width() as u32;
                self.run_slots.push(Slot { off: width, len: w });
                width += w;
                i += 1;
            }
            let count = i - start;
            if count >= 2 && count <= u16::MAX as usize {
                self.runs[start] = FixedRun {
                    first: first as u32,
                    count: count as u16,
                    slot: first_slot.unwrap_or_default(),
                    width,
                };
            } else {
                self.run_slots.truncate(first);
            }
            i = i.max(start + 1);
        }
    }

    /// Finds the string blocks for the interpreter's fast path.
    pub fn find_string_blocks(&mut self) {
        self.string_blocks = (0..self.ops.len())
            .map(|i| match self.ops.get(i..i + 6)? {
                &[
                    Op::BlockBegin { group, end_op, .. },
                    Op::Scalar {
                        slot: type_slot,
                        scalar: Scalar::U32,
                    },
                    Op::Scalar {
                        slot: len_slot,
                        scalar: Scalar::U32,
                    },
                    Op::BlockBound { len_slot: bound_by },
                    Op::Var {
                        slot: data_slot,
                        len_slot: var_len,
                        adjust: -8,
                        ..
                    },
                    Op::BlockEnd,
                ] if end_op as usize == i + 5 && bound_by == len_slot && var_len == len_slot => {
                    Some(StringBlock {
                        group,
                        type_slot,
                        len_slot,
                        data_slot,
                        next: u16::try_from(i + 6).ok()?,
                    })
                }
                _ => None,
            })
            .collect();
    }

    /// For a string/BLOB block group, the slot of its `data` child.
    pub fn string_data(&self, group: u16) -> Option<u16> {
        let f = &self.fields[group as usize];
        let data_path = format!("{}.data", f.path);
        self.by_path.get(data_path.as_str()).copied().filter(|&s| {
            matches!(
                self.fields[s as usize].kind,
                FieldKind::Text | FieldKind::Bytes
            )
        })
    }
}

/// A field reference that mapping and resolution rules compile to: a root-scope slot, or a slot
/// of the first item of a list (path syntax `list[0].field`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRef {
    Root(u16),
    FirstItem {
        list: u16,
        item_scope: ScopeId,
        slot: u16,
    },
}

impl Scope {
    /// Resolves a dotted path, with `[0]` to step into a list's first item.
    pub fn field_ref(&self, catalog: &crate::decode::Catalog, path: &str) -> Option<FieldRef> {
        match path.split_once("[0].") {
            None => self.find(path).map(FieldRef::Root),
            Some((list_path, rest)) => {
                let list = *self.by_path.get(list_path)?;
                let f = &self.fields[list as usize];
                if f.kind != FieldKind::List {
                    return None;
                }
                let item_scope = f.item_scope?;
                let slot = catalog.scope(item_scope).find(rest)?;
                Some(FieldRef::FirstItem {
                    list,
                    item_scope,
                    slot,
                })
            }
        }
    }

    /// The kind of the field a reference points to.
    pub fn ref_kind(&self, catalog: &crate::decode::Catalog, r: FieldRef) -> FieldKind {
        match r {
            FieldRef::Root(s) => self.fields[s as usize].kind,
            FieldRef::FirstItem {
                item_scope, slot, ..
            } => catalog.scope(item_scope).fields[slot as usize].kind,
        }
    }
}

/// Functional category of a record type, as the reference names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Packet,
    Metadata,
    Event,
    Rna,
    Rua,
    Connection,
    Correlation,
    FileMalware,
    Intrusion,
    Vpn,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Packet => "PACKET",
            Category::Metadata => "METADATA",
            Category::Event => "EVENT",
            Category::Rna => "RNA",
            Category::Rua => "RUA",
            Category::Connection => "CONNECTION",
            Category::Correlation => "CORRELATION",
            Category::FileMalware => "FILE_MALWARE",
            Category::Intrusion => "INTRUSION",
            Category::Vpn => "VPN",
        }
    }
}

/// One record type of the catalog.
#[derive(Clone, Debug)]
pub struct RecordSchema {
    pub record_type: u32,
    pub name: Box<str>,
    pub category: Category,
    /// eNcore's label for the record's group ("IPS EVENT", "RNA", ...), which users' content
    /// knows as `recordTypeCategory`.
    pub label: Box<str>,
    /// Layout variants. Usually one; record 71 has one per connection block (160, 163), chosen by
    /// the block type that follows the discovery header.
    pub variants: Vec<Variant>,
}

#[derive(Clone, Debug)]
pub struct Variant {
    /// Block type that selects this variant (`None`: the only variant).
    pub selector: Option<u32>,
    pub scope: ScopeId,
}

impl RecordSchema {
    pub fn is_metadata(&self) -> bool {
        self.category == Category::Metadata
    }
}
