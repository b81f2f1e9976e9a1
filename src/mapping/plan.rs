//! A mapping table compiled for one record layout: field references are slot indexes, resolved
//! names are compiled resolvers, CEF keys are prepared; mapping a record costs no string lookups.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::cef::{CefEncoder, Key, Prepared, PreparedHeader, Warning};
use crate::decode::schema::{FieldKind, Scope};
use crate::decode::value::{ip_from_bytes, write_hex, write_mac, write_uuid};
use crate::decode::{FieldRef, Record, Value};
use crate::metadata::Cache;
use crate::metadata::cache::{Memo, Resolved};
use crate::metadata::rules::{CompiledResolve, MapId, Resolver};

/// Fields every record has, whatever its layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderField {
    RecordType,
    RecordLength,
    ArchiveTimestamp,
    NetmapId,
    /// The record data as bytes (what an unknown record type carries).
    Payload,
}

impl HeaderField {
    pub fn from_name(s: &str) -> Option<HeaderField> {
        Some(match s {
            "recordType" => HeaderField::RecordType,
            "recordLength" => HeaderField::RecordLength,
            "archiveTimestamp" => HeaderField::ArchiveTimestamp,
            "netmapId" => HeaderField::NetmapId,
            "payload" => HeaderField::Payload,
            _ => return None,
        })
    }
}

/// A compiled source expression.
#[derive(Clone, Debug)]
pub enum Src {
    Field(FieldRef, Box<str>),
    Header(HeaderField),
    /// A resolved name, its `@name`, and its memo slot in [`Scratch`].
    Resolved(Arc<CompiledResolve>, Box<str>, usize),
    Const(Box<str>),
    Ms(Box<Src>, Option<Box<Src>>),
    Ipv4(Box<Src>),
    Ipv6(Box<Src>),
    Lookup(Box<Src>, Arc<FxHashMap<String, String>>),
    First(Vec<Src>),
    Truncate(Box<Src>, usize),
    Hex(Box<Src>),
    Ascii(Box<Src>),
    AsciiOnly(Box<Src>),
    L7(Box<Src>),
    /// Text with sources in braces (an extension value such as "{@ingressZone} -> {@egressZone}").
    Template(Vec<TPart>),
}

#[derive(Clone, Debug)]
pub enum TPart {
    Text(Box<str>),
    Src(Src),
}

#[derive(Clone, Debug)]
pub enum Severity {
    Constant(u8),
    Lookup {
        src: Src,
        map: FxHashMap<String, u8>,
        default: u8,
    },
    Ranges {
        src: Src,
        ranges: Vec<(u64, u8)>,
        default: u8,
    },
    Matrix {
        rows: Src,
        columns: Src,
        matrix: Vec<Vec<u8>>,
        default: u8,
    },
}

#[derive(Clone, Debug)]
pub struct Line {
    pub key: Key,
    pub src: Src,
    pub omit_zero: bool,
    /// A label line: written only when the line it labels (the one just before it) was.
    pub is_label: bool,
    /// The value of a constant line (labels), checked for its key once: written as it is.
    pub prepared: Option<Prepared>,
    /// The source in one of the shapes most lines have, read without the general interpreter.
    direct: Option<Direct>,
}

/// A line's source that is a root field, or `ipv4`/`ipv6`/`ms` of root fields (root slots), or
/// a name whose first resolver looks up one root field in a map (most names).
#[derive(Clone, Copy, Debug)]
enum Direct {
    /// A root field of an integer type in the plan's layout.
    Int(u16),
    Field(u16),
    Ipv4(u16),
    Ipv6(u16),
    Ms(u16, Option<u16>),
    Name {
        map: MapId,
        field: u16,
    },
    /// The same with a key of two root fields (a policy and a rule id).
    Name2 {
        map: MapId,
        fields: [u16; 2],
    },
}

impl Direct {
    fn of(src: &Src, scope: Option<&Scope>) -> Option<Direct> {
        let root = |s: &Src| match s {
            Src::Field(FieldRef::Root(slot), _) => Some(*slot),
            _ => None,
        };
        Some(match src {
            Src::Field(FieldRef::Root(slot), _) => match scope
                .and_then(|s| s.fields.get(*slot as usize))
                .map(|f| f.kind)
            {
                Some(FieldKind::Scalar(k)) if k.is_integer() => Direct::Int(*slot),
                _ => Direct::Field(*slot),
            },
            Src::Ipv4(a) => Direct::Ipv4(root(a)?),
            Src::Ipv6(a) => Direct::Ipv6(root(a)?),
            Src::Ms(s, None) => Direct::Ms(root(s)?, None),
            Src::Ms(s, Some(us)) => Direct::Ms(root(s)?, Some(root(us)?)),
            Src::Resolved(r, _, _) => match r.resolvers.first()? {
                Resolver::Lookup {
                    map,
                    key,
                    only_if: None,
                    ..
                } => match key[..] {
                    [FieldRef::Root(field)] => Direct::Name { map: *map, field },
                    [FieldRef::Root(a), FieldRef::Root(b)] => Direct::Name2 {
                        map: *map,
                        fields: [a, b],
                    },
                    _ => return None,
                },
                _ => return None,
            },
            _ => return None,
        })
    }

    /// What `eval` gives for the same source; `None` when a field is absent or a name is not
    /// found at once (then `eval` runs: it notes what is absent, tries the fallbacks).
    #[inline(always)]
    fn eval<'a>(self, rec: &Record<'a>, cache: &'a Cache) -> Option<V<'a>> {
        Some(match self {
            Direct::Name { map, field } => match cache.find_short(map, &rec.get(field)?)? {
                Resolved::Plain(s) => V::Plain(s),
                Resolved::Name(s) => V::Str(Cow::Borrowed(s)),
                _ => return None,
            },
            Direct::Name2 {
                map,
                fields: [a, b],
            } => match cache.find_compact(map, &[rec.get(a)?, rec.get(b)?])? {
                Resolved::Plain(s) => V::Plain(s),
                Resolved::Name(s) => V::Str(Cow::Borrowed(s)),
                _ => return None,
            },
            Direct::Int(f) => V::Int(rec.root_uint(f)?),
            Direct::Field(f) => from_value(rec.get(f)?),
            Direct::Ipv4(f) => ipv4(from_value(rec.get(f)?)),
            Direct::Ipv6(f) => ipv6(from_value(rec.get(f)?)),
            Direct::Ms(s, us) => {
                let us = match us {
                    Some(u) => Some(from_value(rec.get(u)?)),
                    None => None,
                };
                ms(from_value(rec.get(s)?), us)
            }
        })
    }
}

impl Line {
    /// `scope`: the layout the line's fields are slots of (`None` for unknown record types).
    pub fn new(key: Key, src: Src, omit_zero: bool, is_label: bool, scope: Option<&Scope>) -> Line {
        let prepared = match &src {
            Src::Const(c) => Prepared::new(&key, c),
            _ => None,
        };
        Line {
            direct: Direct::of(&src, scope),
            key,
            src,
            omit_zero,
            is_label,
            prepared,
        }
    }
}

/// Where a plan came from, for `mappings show` and error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub record_type: Option<u32>,
    pub origin: Origin,
    pub class_id: Vec<TPart>,
    pub name: Vec<TPart>,
    pub severity: Severity,
    pub msgid: Arc<str>,
    pub lines: Vec<Line>,
    /// `class_id` and `name` when both are constants that go on the wire as they are.
    pub header: Option<PreparedHeader>,
}

impl Plan {
    /// The constant header of a class id and name template, when both are plain text.
    pub fn prepare_header(class_id: &[TPart], name: &[TPart]) -> Option<PreparedHeader> {
        let text = |parts: &[TPart]| {
            parts.iter().try_fold(String::new(), |mut s, p| match p {
                TPart::Text(t) => {
                    s.push_str(t);
                    Some(s)
                }
                TPart::Src(_) => None,
            })
        };
        PreparedHeader::new(&text(class_id)?, &text(name)?)
    }
}

/// A value while a line is evaluated.
#[derive(Clone, Debug, PartialEq)]
enum V<'a> {
    None,
    Int(u64),
    /// Text from the wire (maybe not UTF-8).
    Raw(&'a [u8]),
    Bytes(&'a [u8]),
    Str(Cow<'a, str>),
    /// A stored name the encoder copies as it is (see [`crate::cef::is_plain`]).
    Plain(&'a str),
    Ip(IpAddr),
    Mac(&'a [u8]),
    Uuid(&'a [u8]),
    Hex(&'a [u8]),
    Time(i64, u32),
}

impl V<'_> {
    /// Whether the encoder writes nothing for this value (it trims trailing spaces and control
    /// characters other than CR and LF), so that its label is left out too.
    fn is_empty(&self) -> bool {
        fn blank(b: &[u8]) -> bool {
            b.iter()
                .all(|&c| matches!(c, b' ' | 0..=0x1f | 0x7f) && c != b'\n' && c != b'\r')
        }
        match self {
            V::None => true,
            V::Raw(b) | V::Bytes(b) => blank(b),
            V::Str(s) => blank(s.as_bytes()),
            V::Plain(_) => false,
            V::Hex(b) => b.is_empty(),
            _ => false,
        }
    }

    /// What `omit_zero` leaves out: the number 0, and a timestamp of second 0 (an unset time).
    fn is_zero(&self) -> bool {
        matches!(self, V::Int(0) | V::Time(0, _))
    }

    fn write_text(&self, out: &mut String) {
        match self {
            V::None => {}
            V::Int(v) => out.push_str(itoa::Buffer::new().format(*v)),
            V::Raw(b) | V::Bytes(b) => {
                out.extend(String::from_utf8_lossy(b).chars().filter(|&c| c != '\0'))
            }
            V::Str(s) => out.push_str(s),
            V::Plain(s) => out.push_str(s),
            V::Ip(ip) => {
                let _ = write!(out, "{ip}");
            }
            V::Mac(b) => write_mac(out, b),
            V::Uuid(b) => write_uuid(out, b),
            V::Hex(b) => write_hex(out, b),
            V::Time(s, us) => {
                out.push_str(itoa::Buffer::new().format(*s * 1000 + (*us / 1000) as i64))
            }
        }
    }
}

/// What mapping a record produced, besides the CEF line in the caller's buffer.
#[derive(Debug, Default)]
pub struct Notes {
    /// Resolved names whose metadata was missing (the id was sent instead). Noted even when
    /// notes are not collected.
    pub missing_metadata: Vec<String>,
    /// Fields the table wanted that the record does not have.
    pub absent_fields: Vec<String>,
    /// What the encoder changed (truncations, invalid UTF-8, ...). Noted even when notes are
    /// not collected.
    pub encoder: Vec<Warning>,
}

impl Notes {
    pub fn clear(&mut self) {
        self.missing_metadata.clear();
        self.absent_fields.clear();
        self.encoder.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.missing_metadata.is_empty() && self.absent_fields.is_empty() && self.encoder.is_empty()
    }

    /// One line per note, for the tap.
    pub fn to_strings(&self) -> Vec<String> {
        let mut v = Vec::new();
        for m in &self.missing_metadata {
            v.push(format!("metadata missing: {m}"));
        }
        for f in &self.absent_fields {
            v.push(format!("field absent: {f}"));
        }
        for w in &self.encoder {
            v.push(w.to_string());
        }
        v
    }
}

/// Reusable scratch space for mapping records on one thread.
#[derive(Default)]
pub struct Scratch {
    class_id: String,
    name: String,
    text: String,
    /// Collect notes (costs a little; on when the tap is in JSON form).
    pub collect_notes: bool,
    pub notes: Notes,
    /// One memo per `@name` lookup of the tables (see `Src::Resolved`).
    memos: Vec<Memo>,
}

/// What evaluating a line may change: the notes, and the lookup memos.
struct Work<'s> {
    notes: &'s mut Notes,
    memos: &'s mut Vec<Memo>,
}

fn memo_slot(memos: &mut Vec<Memo>, i: usize) -> &mut Memo {
    if memos.len() <= i {
        memos.resize_with(i + 1, Memo::default);
    }
    &mut memos[i]
}

impl Scratch {
    /// Scratch space; `collect_notes` gathers what mapping changed or missed (for the tap).
    pub fn new(collect_notes: bool) -> Scratch {
        Scratch {
            collect_notes,
            ..Scratch::default()
        }
    }
}

struct Ctx<'a> {
    rec: &'a Record<'a>,
    cache: &'a Cache,
    collect: bool,
}

impl Plan {
    /// Writes the record's CEF line into `buf` (appending). Returns the CEF severity.
    pub fn encode(
        &self,
        rec: &Record<'_>,
        cache: &Cache,
        encoder: &mut CefEncoder,
        buf: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> u8 {
        scratch.notes.clear();
        let Scratch {
            class_id,
            name,
            text,
            collect_notes,
            notes,
            memos,
        } = scratch;
        let mut w = Work { notes, memos };
        let ctx = Ctx {
            rec,
            cache,
            collect: *collect_notes,
        };
        let severity;
        let mut line = match &self.header {
            Some(header) => {
                severity = self.severity(&ctx, &mut w, text);
                encoder.begin_prepared(buf, header, severity)
            }
            None => {
                class_id.clear();
                name.clear();
                render(&self.class_id, &ctx, &mut w, class_id);
                render(&self.name, &ctx, &mut w, name);
                severity = self.severity(&ctx, &mut w, text);
                encoder.begin(buf, class_id, name, severity)
            }
        };
        let mut last_written = false;
        for l in &self.lines {
            if l.is_label && !last_written {
                continue;
            }
            // A constant is never zero and never empty.
            if let Some(p) = &l.prepared {
                let before = line.pairs();
                line.prepared(&l.key, p);
                if !l.is_label {
                    last_written = line.pairs() > before;
                }
                continue;
            }
            // Integers, the most common lines, without the value enum.
            if let Some(Direct::Int(f)) = l.direct
                && let Some(i) = rec.root_uint(f)
            {
                if l.omit_zero && i == 0 {
                    last_written = false;
                } else {
                    let before = line.pairs();
                    line.uint(&l.key, i);
                    if !l.is_label {
                        last_written = line.pairs() > before;
                    }
                }
                continue;
            }
            let v = match l.direct.and_then(|d| d.eval(rec, cache)) {
                Some(v) => v,
                None => eval(&l.src, &ctx, &mut w),
            };
            if l.omit_zero && v.is_zero() {
                last_written = false;
                continue;
            }
            // Whether the encoder wrote the pair (it leaves out values that trim to nothing):
            // a label goes only with its value.
            let before = line.pairs();
            match v {
                V::None => {}
                V::Int(i) => {
                    line.uint(&l.key, i);
                }
                V::Raw(b) | V::Bytes(b) => {
                    line.bytes_lossy(&l.key, b);
                }
                V::Str(s) => {
                    line.text(&l.key, &s);
                }
                V::Plain(s) => {
                    line.plain(&l.key, s);
                }
                V::Ip(IpAddr::V4(a)) => {
                    line.ipv4(&l.key, a);
                }
                V::Ip(IpAddr::V6(a)) => {
                    line.ipv6(&l.key, a);
                }
                V::Mac(m) if m.len() == 6 => {
                    line.mac(&l.key, [m[0], m[1], m[2], m[3], m[4], m[5]]);
                }
                V::Time(s, us) => {
                    line.timestamp(&l.key, s, us);
                }
                other => {
                    text.clear();
                    other.write_text(text);
                    line.text(&l.key, text);
                }
            }
            if !l.is_label {
                last_written = line.pairs() > before;
            }
        }
        // Noted whether or not notes are collected (rare; the monitor counts them).
        notes.encoder.extend_from_slice(line.finish());
        severity
    }

    fn severity(&self, ctx: &Ctx, w: &mut Work, text: &mut String) -> u8 {
        match &self.severity {
            Severity::Constant(s) => *s,
            Severity::Lookup { src, map, default } => {
                text.clear();
                let v = eval(src, ctx, w);
                v.write_text(text);
                map.get(text.as_str()).copied().unwrap_or(*default)
            }
            Severity::Ranges {
                src,
                ranges,
                default,
            } => match as_int(&eval(src, ctx, w)) {
                Some(v) => ranges
                    .iter()
                    .find(|(max, _)| v <= *max)
                    .map(|r| r.1)
                    .unwrap_or(*default),
                None => *default,
            },
            Severity::Matrix {
                rows,
                columns,
                matrix,
                default,
            } => {
                let r = as_int(&eval(rows, ctx, w));
                let c = as_int(&eval(columns, ctx, w));
                match (r, c) {
                    (Some(r), Some(c)) if r >= 1 && c >= 1 => matrix
                        .get(r as usize - 1)
                        .and_then(|row| row.get(c as usize - 1))
                        .copied()
                        .unwrap_or(*default),
                    _ => *default,
                }
            }
        }
    }
}

/// An address from an address field, or from a 16-byte value the catalog types as u128.
fn as_ip(v: V) -> Option<IpAddr> {
    match v {
        V::Ip(ip) => Some(ip),
        V::Hex(b) if b.len() == 16 => ip_from_bytes(b),
        _ => None,
    }
}

/// `ipv4(x)`: an IPv4 address, or nothing (the interpreter and the direct lines share it).
#[inline(always)]
fn ipv4(v: V) -> V {
    match as_ip(v) {
        Some(IpAddr::V4(v4)) => V::Ip(IpAddr::V4(v4)),
        _ => V::None,
    }
}

/// `ipv6(x)`: an IPv6 address other than `::`, or nothing.
#[inline(always)]
fn ipv6(v: V) -> V {
    match as_ip(v) {
        Some(IpAddr::V6(v6)) if !v6.is_unspecified() => V::Ip(IpAddr::V6(v6)),
        _ => V::None,
    }
}

/// `ms(seconds[, microseconds])`: a timestamp, or nothing when the seconds are not a number.
#[inline(always)]
fn ms<'a>(seconds: V<'a>, microseconds: Option<V<'a>>) -> V<'a> {
    let us = microseconds.and_then(|u| as_int(&u)).unwrap_or(0);
    match as_int(&seconds) {
        Some(s) => V::Time(s as i64, us.min(999_999) as u32),
        None => V::None,
    }
}

fn as_int(v: &V) -> Option<u64> {
    match v {
        V::Int(i) => Some(*i),
        V::Str(s) => s.trim().parse().ok(),
        V::Plain(s) => s.trim().parse().ok(),
        V::Raw(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn render(parts: &[TPart], ctx: &Ctx, w: &mut Work, out: &mut String) {
    for p in parts {
        match p {
            TPart::Text(t) => out.push_str(t),
            TPart::Src(s) => eval(s, ctx, w).write_text(out),
        }
    }
}

fn eval<'a>(src: &'a Src, ctx: &Ctx<'a>, w: &mut Work) -> V<'a> {
    match src {
        Src::Field(f, path) => match ctx.rec.get_ref(*f) {
            Some(v) => from_value(v),
            None => {
                if ctx.collect {
                    w.notes.absent_fields.push(path.to_string());
                }
                V::None
            }
        },
        Src::Header(h) => {
            let hd = &ctx.rec.header;
            match h {
                HeaderField::RecordType => V::Int(hd.record_type as u64),
                HeaderField::RecordLength => V::Int(hd.record_length as u64),
                HeaderField::ArchiveTimestamp => V::Int(hd.archive_timestamp as u64),
                HeaderField::NetmapId => hd.netmap_id.map_or(V::None, |n| V::Int(n as u64)),
                HeaderField::Payload => V::Bytes(ctx.rec.data),
            }
        }
        Src::Resolved(r, name, memo) => {
            match ctx
                .cache
                .resolve_memo(ctx.rec, r, memo_slot(w.memos, *memo))
            {
                Resolved::Name(s) => V::Str(Cow::Borrowed(s)),
                Resolved::Plain(s) => V::Plain(s),
                Resolved::Int(i) => V::Int(i),
                Resolved::Text(s) => V::Str(Cow::Owned(s)),
                Resolved::Missing(id) => {
                    // Noted whether or not notes are collected: the monitor counts names sent as
                    // ids. Rare, and the id is allocated anyway.
                    w.notes.missing_metadata.push(format!("@{name} (id {id})"));
                    V::Str(Cow::Owned(id))
                }
                Resolved::Absent => V::None,
            }
        }
        Src::Const(c) => V::Str(Cow::Borrowed(c)),
        Src::Ms(sec, usec) => {
            let s = eval(sec, ctx, w);
            let us = usec.as_ref().map(|u| eval(u, ctx, w));
            ms(s, us)
        }
        Src::Ipv4(a) => ipv4(eval(a, ctx, w)),
        Src::Ipv6(a) => ipv6(eval(a, ctx, w)),
        Src::Lookup(x, table) => {
            let v = eval(x, ctx, w);
            let mut key = String::new();
            v.write_text(&mut key);
            match table.get(&key) {
                Some(t) => V::Str(Cow::Borrowed(t.as_str())),
                None => v,
            }
        }
        Src::First(list) => {
            for s in list {
                let v = eval(s, ctx, w);
                if !v.is_empty() {
                    return v;
                }
            }
            V::None
        }
        Src::Truncate(x, n) => {
            let v = eval(x, ctx, w);
            let mut s = String::new();
            v.write_text(&mut s);
            if let Some((i, _)) = s.char_indices().nth(*n) {
                s.truncate(i);
            }
            V::Str(Cow::Owned(s))
        }
        Src::Hex(x) => match eval(x, ctx, w) {
            V::Raw(b) | V::Bytes(b) | V::Hex(b) | V::Uuid(b) | V::Mac(b) => V::Hex(b),
            other => other,
        },
        Src::Ascii(x) => match eval(x, ctx, w) {
            V::Raw(b) | V::Bytes(b) => V::Str(Cow::Owned(
                b.iter()
                    .map(|&c| {
                        if (0x20..0x7f).contains(&c) {
                            c as char
                        } else {
                            '.'
                        }
                    })
                    .collect(),
            )),
            other => other,
        },
        // eNcore's rendering of packet payloads: the ASCII bytes as they are (the encoder escapes
        // line breaks and writes other control characters as spaces), the other bytes left out.
        Src::AsciiOnly(x) => match eval(x, ctx, w) {
            V::Raw(b) | V::Bytes(b) => V::Str(Cow::Owned(
                b.iter()
                    .filter(|c| c.is_ascii())
                    .map(|&c| c as char)
                    .collect(),
            )),
            other => other,
        },
        Src::L7(x) => match eval(x, ctx, w) {
            V::Raw(b) => V::Raw(super::frame::l7_payload(b)),
            V::Bytes(b) => V::Bytes(super::frame::l7_payload(b)),
            other => other,
        },
        Src::Template(parts) => {
            let mut s = String::new();
            render(parts, ctx, w, &mut s);
            V::Str(Cow::Owned(s))
        }
    }
}

fn from_value(v: Value<'_>) -> V<'_> {
    match v {
        Value::Int(i) => V::Int(i),
        Value::Ip(b) => match ip_from_bytes(b) {
            Some(ip) => V::Ip(ip),
            None => V::Hex(b),
        },
        Value::Mac(b) => V::Mac(b),
        Value::Uuid(b) => V::Uuid(b),
        Value::Hex(b) => {
            // 16-byte values typed as u128 that hold addresses (VPN client IPs) stay hex here;
            // mappings use ipv4()/ipv6() on them when they want an address.
            V::Hex(b)
        }
        Value::Text(b) => V::Raw(b),
        Value::Bytes(b) => V::Bytes(b),
    }
}
