//! Mapping tables: declarative TOML (`mappings/*.toml`) that turns decoded fields into the CEF
//! header and extension. Built-in tables are embedded in the binary; files in the mappings folder
//! (`/etc/estreamer-cef/mappings`, or `[cef] mappings_dir`) replace them per record type or add
//! new ones. Every table is checked when it is loaded; errors name the file, the line and what
//! would be valid. See `mappings/README.md` for the language.

pub mod builtin;
pub mod expr;
pub mod file;
pub mod frame;
pub mod plan;
pub mod table;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::cef::{Key, KeyOptions, check_key};
use crate::decode::{Record, Scope, catalog};
use crate::diagnostic::suggest;
use crate::metadata::rules;
use expr::{Expr, Func, TemplatePart};
use file::{LineDef, MappingFile, Records, SeverityDef, line_of};
use plan::{HeaderField, Line, Origin, Plan, Severity, Src, TPart};
use table::{Item, LookupTables, TableDef};

pub use builtin::{STANDARD, profile_names};

/// A problem in a mapping file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Where tables come from.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Start from the built-in tables.
    pub builtin: bool,
    /// Folder of `*.toml` files that replace built-in tables per record type or add new ones.
    /// A missing folder is fine (nothing to override).
    pub dir: Option<PathBuf>,
    /// Longest `csN` value.
    pub cs_max_len: usize,
    /// The profile (`[cef] profile`): "standard" (the built-in tables as they are) or the name of
    /// a folder of `mappings/profiles/`, whose patches change the built-in tables.
    pub profile: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            builtin: true,
            dir: None,
            cs_max_len: 1023,
            profile: STANDARD.to_string(),
        }
    }
}

/// The effective tables, compiled.
#[derive(Clone, Debug, Default)]
pub struct Mappings {
    /// Record type → (layout scope address, plan).
    plans: FxHashMap<u32, Vec<(usize, Arc<Plan>)>>,
    unknown: Option<Arc<Plan>>,
    /// Record type → the table's source text, for `mappings show`.
    sources: BTreeMap<u32, (Origin, String)>,
    /// `@name` lookups compiled so far: each has its own memo slot in the mapper's scratch.
    memo_slots: Arc<std::sync::atomic::AtomicUsize>,
    unknown_source: Option<(Origin, String)>,
    /// Record types whose table a `[[patch]]` changed, with the patches (for `mappings check`).
    patched: Vec<(u32, Vec<Origin>)>,
}

/// The tables read so far, before they are compiled.
#[derive(Default)]
struct Tables {
    types: BTreeMap<u32, TableDef>,
    unknown: Option<TableDef>,
}

/// A file's `[[patch]]` tables and what they need to be applied.
struct Patches {
    file: String,
    text: String,
    parsed: Vec<toml::Spanned<file::PatchDef>>,
    tables: LookupTables,
    /// From a shipped profile (which may send keys `verbatim`).
    profile: bool,
}

impl Mappings {
    /// Loads and checks the tables: the built-in ones, replaced per record type by the tables
    /// of the mappings folder, then changed by its patches (in file order). All problems are
    /// reported together.
    pub fn load(opts: &LoadOptions) -> Result<Mappings, Vec<MappingError>> {
        let key_opts = KeyOptions::with_cs_max_chars(opts.cs_max_len as u32).map_err(|e| {
            vec![MappingError {
                file: "[cef] cs_max_len".into(),
                line: 0,
                message: e.to_string(),
            }]
        })?;
        let mut errors = Vec::new();
        let mut tables = Tables::default();
        let mut patches = Vec::new();
        if opts.builtin {
            for (name, text) in builtin::BUILTIN {
                read_file(
                    &format!("builtin:{name}"),
                    text,
                    &mut tables,
                    &mut patches,
                    &mut errors,
                    false,
                );
            }
            profile_patches(opts, &mut patches, &mut errors);
        }
        // The profile changes the built-in tables; a table of the mappings folder replaces the
        // profile's version of its record type too.
        apply_patches(&mut tables, &patches, &mut errors);
        patches.clear();
        if let Some(dir) = &opts.dir {
            match list_toml(dir) {
                Ok(files) => {
                    let mut user = Tables::default();
                    for f in files {
                        match std::fs::read_to_string(&f) {
                            Ok(text) => read_file(
                                &f.display().to_string(),
                                &text,
                                &mut user,
                                &mut patches,
                                &mut errors,
                                true,
                            ),
                            Err(e) => errors.push(MappingError {
                                file: f.display().to_string(),
                                line: 0,
                                message: format!("cannot read: {e}"),
                            }),
                        }
                    }
                    // User tables replace built-in ones per record type.
                    tables.types.extend(user.types);
                    if user.unknown.is_some() {
                        tables.unknown = user.unknown;
                    }
                }
                Err(e) => errors.push(MappingError {
                    file: dir.display().to_string(),
                    line: 0,
                    message: e,
                }),
            }
        }
        apply_patches(&mut tables, &patches, &mut errors);
        let mut m = Mappings::default();
        let mut compile_errors = Vec::new();
        for (t, def) in &tables.types {
            m.compile_type(*t, def, &key_opts, &mut compile_errors);
        }
        if let Some(def) = &tables.unknown {
            let mut c = Compiler::new(&m.memo_slots, &def.tables, &key_opts);
            if let Some(plan) = c.compile(def, None, None) {
                m.unknown = Some(Arc::new(plan));
                m.unknown_source = Some((def.origin.clone(), def.show(None)));
            }
            compile_errors.extend(c.errors);
        }
        // The same problem shows once per record type and variant; report it once.
        for e in compile_errors {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(m)
        } else {
            Err(errors)
        }
    }

    /// Compiles a record type's table for each of its layouts.
    fn compile_type(
        &mut self,
        t: u32,
        def: &TableDef,
        key_opts: &KeyOptions,
        errors: &mut Vec<MappingError>,
    ) {
        let Some(schema) = catalog().record(t) else {
            return;
        };
        let scopes: Vec<&'static Scope> = schema
            .variants
            .iter()
            .map(|v| catalog().scope(v.scope))
            .collect();
        let mut c = Compiler::new(&self.memo_slots, &def.tables, key_opts);
        let mut compiled = Vec::new();
        for &scope in &scopes {
            if let Some(p) = c.compile(def, Some(t), Some((scope, &scopes))) {
                compiled.push((scope as *const Scope as usize, Arc::new(p)));
            }
        }
        if compiled.len() == scopes.len() {
            if !def.patches.is_empty() {
                self.patched.push((t, def.patches.clone()));
            }
            self.plans.insert(t, compiled);
            self.sources
                .insert(t, (def.origin.clone(), def.show(Some(t))));
        }
        errors.extend(c.errors);
    }

    /// The tables a configuration names: built-in ones overridden by `dir` (default: its
    /// `[cef] mappings_dir`). Errors come as one text, a problem per line.
    pub fn for_config(
        cfg: &crate::config::Config,
        dir: Option<PathBuf>,
    ) -> Result<Mappings, String> {
        Mappings::load(&LoadOptions {
            builtin: true,
            dir: Some(dir.unwrap_or_else(|| cfg.cef.mappings_dir.clone())),
            cs_max_len: cfg.cef.cs_max_len,
            profile: cfg.cef.profile.clone(),
        })
        .map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// The built-in tables (checked by the test suite).
    pub fn builtin() -> Mappings {
        Mappings::load(&LoadOptions::default()).unwrap_or_else(|errors| {
            panic!(
                "built-in mapping tables do not load:\n{}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    }

    /// The plan for a decoded record, if a table maps its type.
    pub fn plan_for(&self, rec: &Record<'_>) -> Option<&Plan> {
        match rec.scope {
            None => self.unknown.as_deref(),
            Some(scope) => {
                let id = scope as *const Scope as usize;
                self.plans
                    .get(&rec.record_type())?
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map(|(_, p)| &**p)
            }
        }
    }

    /// Record types whose table a `[[patch]]` changed, with where the patches are, in order.
    pub fn patched(&self) -> &[(u32, Vec<Origin>)] {
        &self.patched
    }

    /// Record types with a table.
    pub fn record_types(&self) -> Vec<u32> {
        self.sources.keys().copied().collect()
    }

    /// The effective table for a record type (or "unknown"), with where it comes from.
    pub fn show(&self, record_type: Option<u32>) -> Option<String> {
        let (_, text) = match record_type {
            Some(t) => self.sources.get(&t)?,
            None => self.unknown_source.as_ref()?,
        };
        Some(text.clone())
    }
}

/// Reads the patch files of the profile `opts` names into `patches`. A profile only patches: a
/// whole `[[mapping]]` in one is an error (it would hide the built-in table from upgrades).
fn profile_patches(opts: &LoadOptions, patches: &mut Vec<Patches>, errors: &mut Vec<MappingError>) {
    let Some(files) = builtin::profile_files(&opts.profile) else {
        errors.push(MappingError {
            file: "[cef] profile".into(),
            line: 0,
            message: format!(
                "`{}` is not a profile; the profiles are {}",
                opts.profile,
                profile_names()
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        return;
    };
    for (name, text) in files {
        let file = format!("builtin:{name}");
        let mut whole = Tables::default();
        let first = patches.len();
        read_file(&file, text, &mut whole, patches, errors, false);
        for p in &mut patches[first..] {
            p.profile = true;
        }
        if !whole.types.is_empty() || whole.unknown.is_some() {
            errors.push(MappingError {
                file: file.clone(),
                line: 0,
                message: "a profile changes the built-in tables with [[patch]] only".into(),
            });
        }
    }
}

/// Applies `patches` in order to the tables of their record types. A patched table is compiled
/// even when the patch has errors (a `remove` naming a key the table lacks is skipped), so that
/// every problem of the patch shows at once.
fn apply_patches(tables: &mut Tables, patches: &[Patches], errors: &mut Vec<MappingError>) {
    for p in patches {
        for patch in &p.parsed {
            let t = *patch.get_ref().record.get_ref();
            match tables.types.get_mut(&t) {
                Some(def) => def.apply(patch, &p.file, &p.text, &p.tables, p.profile, errors),
                None => errors.push(MappingError {
                    file: p.file.clone(),
                    line: line_of(&p.text, patch.get_ref().record.span().start),
                    message: if catalog().record(t).is_some() {
                        format!(
                            "no table maps record type {t}, so there is nothing to patch: \
                             write a whole [[mapping]] for it instead"
                        )
                    } else {
                        format!(
                            "record type {t} is not in the catalog (`estreamer-cef mappings \
                             check` lists the mapped types)"
                        )
                    },
                }),
            }
        }
    }
}

/// Reads a mapping file's tables into `into` (per record type) and keeps its patches for later.
/// A user file's table for a record type another user file maps is an error; built-in tables
/// simply replace each other.
fn read_file(
    file: &str,
    text: &str,
    into: &mut Tables,
    patches: &mut Vec<Patches>,
    errors: &mut Vec<MappingError>,
    user: bool,
) {
    let err = |line: usize, message: String| MappingError {
        file: file.to_string(),
        line,
        message,
    };
    let parsed: MappingFile = match toml::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            errors.push(err(line, e.message().trim_end().to_string()));
            return;
        }
    };
    let lookups: LookupTables = parsed
        .tables
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Arc::new(v.iter().map(|(a, b)| (a.clone(), b.clone())).collect()),
            )
        })
        .collect();
    let lookups = Arc::new(lookups);
    for def in &parsed.mapping {
        let table = TableDef::new(def, file, text, lookups.clone());
        let records = &def.get_ref().records;
        match records.get_ref() {
            Records::Special(s) if s == "unknown" => {
                if into.unknown.is_some() {
                    errors.push(err(
                        table.origin.line,
                        "a second table for \"unknown\" records".into(),
                    ));
                }
                into.unknown = Some(table);
            }
            Records::Special(s) => errors.push(err(
                line_of(text, records.span().start),
                format!("records = {s:?}: give a list of record types, or \"unknown\""),
            )),
            Records::Types(types) => {
                for &t in types {
                    if catalog().record(t).is_none() {
                        errors.push(err(
                            line_of(text, records.span().start),
                            format!(
                                "record type {t} is not in the catalog; known event types include \
                                 2, 9, 10-35, 71, 73-95, 101-107, 110, 112, 125, 160, 170, 171, 400, 500, 502 \
                                 (`estreamer-cef mappings show TYPE` shows a table)"
                            ),
                        ));
                        continue;
                    }
                    if user && let Some(other) = into.types.get(&t) {
                        errors.push(err(
                            table.origin.line,
                            format!(
                                "record type {t} is mapped twice (also at {}:{})",
                                other.origin.file, other.origin.line
                            ),
                        ));
                        continue;
                    }
                    into.types.insert(t, table.clone());
                }
            }
        }
    }
    if !parsed.patch.is_empty() {
        patches.push(Patches {
            file: file.to_string(),
            text: text.to_string(),
            parsed: parsed.patch,
            tables: Arc::unwrap_or_clone(lookups),
            profile: false,
        });
    }
}

struct Compiler<'a> {
    memo_slots: &'a std::sync::atomic::AtomicUsize,
    tables: &'a LookupTables,
    key_opts: &'a KeyOptions,
    errors: Vec<MappingError>,
}

/// The layout being compiled and all layouts of the table's record types (a field must exist in
/// at least one of them).
type Layouts<'s> = Option<(&'static Scope, &'s [&'static Scope])>;

impl<'a> Compiler<'a> {
    fn new(
        memo_slots: &'a std::sync::atomic::AtomicUsize,
        tables: &'a LookupTables,
        key_opts: &'a KeyOptions,
    ) -> Self {
        Compiler {
            memo_slots,
            tables,
            key_opts,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, at: &Origin, message: String) {
        let e = MappingError {
            file: at.file.clone(),
            line: at.line,
            message,
        };
        // The same problem shows once per layout of a record type; report it once.
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn compile(
        &mut self,
        def: &TableDef,
        record_type: Option<u32>,
        layouts: Layouts,
    ) -> Option<Plan> {
        let before = self.errors.len();
        let class_id = self.template(&def.class_id.value, &def.class_id.at, record_type, layouts);
        let name = self.template(&def.name.value, &def.name.at, record_type, layouts);
        let severity = self.severity(&def.severity, record_type, layouts);
        let mut lines = Vec::new();
        let keys: Vec<&str> = def.extension.keys().map(|k| k.as_str()).collect();
        for (key, line) in &def.extension {
            let at = &line.at;
            let checked = if def.verbatim.contains(key) {
                Key::verbatim(key)
            } else {
                check_key(key).and_then(|_| Key::with_options(key, self.key_opts))
            };
            let k = match checked {
                Ok(k) => k,
                Err(e) => {
                    self.error(at, format!("`{key}`: {e}"));
                    continue;
                }
            };
            if let Some(base) = label_base(key) {
                if !keys.contains(&base) {
                    self.error(at, format!("`{key}` labels `{base}`, which this table does not set: add a `{base}` line or remove the label"));
                }
            } else if is_custom_family(key) && !keys.contains(&format!("{key}Label").as_str()) {
                self.error(
                    at,
                    format!("`{key}` has no `{key}Label`: ArcSight shows custom fields by their label; add `{key}Label = \"'...'\"`"),
                );
            }
            let ldef: &LineDef = &line.value;
            let Some(src) = self.line_source(ldef.source(), at, record_type, layouts) else {
                continue;
            };
            lines.push(Line::new(
                k,
                src,
                ldef.omit_zero(),
                label_base(key).is_some(),
                layouts.map(|(scope, _)| scope),
            ));
        }
        if self.errors.len() > before {
            return None;
        }
        // Each label goes right after the value it labels, and is written only with it.
        let mut ordered: Vec<Line> = Vec::with_capacity(lines.len());
        let labels: Vec<Line> = lines.iter().filter(|l| l.is_label).cloned().collect();
        for l in lines.into_iter().filter(|l| !l.is_label) {
            let label = format!("{}Label", l.key.name());
            ordered.push(l);
            if let Some(lab) = labels.iter().find(|x| x.key.name() == label) {
                ordered.push(lab.clone());
            }
        }
        let lines = ordered;
        let (class_id, name) = (class_id?, name?);
        Some(Plan {
            record_type,
            origin: def.origin.clone(),
            header: Plan::prepare_header(&class_id, &name),
            class_id,
            name,
            severity: severity?,
            msgid: Arc::from(def.msgid.as_ref().map_or("-", |m| m.value.as_str())),
            lines,
        })
    }

    fn template(
        &mut self,
        text: &str,
        at: &Origin,
        record_type: Option<u32>,
        layouts: Layouts,
    ) -> Option<Vec<TPart>> {
        let parts = match expr::parse_template(text) {
            Ok(p) => p,
            Err(e) => {
                self.error(at, e.0);
                return None;
            }
        };
        let mut out = Vec::new();
        for p in parts {
            out.push(match p {
                TemplatePart::Text(s) => TPart::Text(s.into()),
                TemplatePart::Expr(e) => {
                    TPart::Src(self.compile_expr(&e, at, record_type, layouts)?)
                }
            });
        }
        Some(out)
    }

    /// An extension value: a source, or a template when it has sources in braces
    /// (`"{@ingressZone} -> {@egressZone}"`) and is not a source itself.
    fn line_source(
        &mut self,
        text: &str,
        at: &Origin,
        record_type: Option<u32>,
        layouts: Layouts,
    ) -> Option<Src> {
        if text.contains('{') && expr::parse(text).is_err() {
            return self
                .template(text, at, record_type, layouts)
                .map(Src::Template);
        }
        self.source(text, at, record_type, layouts)
    }

    fn source(
        &mut self,
        text: &str,
        at: &Origin,
        record_type: Option<u32>,
        layouts: Layouts,
    ) -> Option<Src> {
        match expr::parse(text) {
            Ok(e) => self.compile_expr(&e, at, record_type, layouts),
            Err(e) => {
                self.error(at, e.0);
                None
            }
        }
    }

    fn severity(
        &mut self,
        severity: &Item<SeverityDef>,
        record_type: Option<u32>,
        layouts: Layouts,
    ) -> Option<Severity> {
        let at = &severity.at;
        match &severity.value {
            SeverityDef::Constant(s) if *s <= 10 => Some(Severity::Constant(*s)),
            SeverityDef::Constant(s) => {
                self.error(at, format!("severity {s} is out of range 0-10"));
                None
            }
            SeverityDef::Rule(r) => {
                let default = r.default.unwrap_or(5).min(10);
                let field = |c: &mut Self, f: &Option<String>, what: &str| -> Option<Src> {
                    match f {
                        Some(f) => c.source(f, at, record_type, layouts),
                        None => {
                            c.error(at, format!("severity rule needs `{what}`"));
                            None
                        }
                    }
                };
                if let Some(matrix) = &r.matrix {
                    let rows = field(self, &r.rows, "rows")?;
                    let columns = field(self, &r.columns, "columns")?;
                    return Some(Severity::Matrix {
                        rows,
                        columns,
                        matrix: matrix
                            .iter()
                            .map(|row| row.iter().map(|&s| s.min(10)).collect())
                            .collect(),
                        default,
                    });
                }
                if let Some(map) = &r.map {
                    let src = field(self, &r.field, "field")?;
                    return Some(Severity::Lookup {
                        src,
                        map: map.iter().map(|(k, v)| (k.clone(), (*v).min(10))).collect(),
                        default,
                    });
                }
                if let Some(ranges) = &r.ranges {
                    let src = field(self, &r.field, "field")?;
                    let mut rs: Vec<(u64, u8)> =
                        ranges.iter().map(|r| (r.max, r.severity.min(10))).collect();
                    rs.sort_by_key(|r| r.0);
                    return Some(Severity::Ranges {
                        src,
                        ranges: rs,
                        default,
                    });
                }
                self.error(
                    at,
                    "severity must be a number 0-10, { field, map, default }, { field, ranges, default } \
                     or { rows, columns, matrix, default }"
                        .into(),
                );
                None
            }
        }
    }

    fn compile_expr(
        &mut self,
        e: &Expr,
        at: &Origin,
        record_type: Option<u32>,
        layouts: Layouts,
    ) -> Option<Src> {
        Some(match e {
            Expr::Const(s) => Src::Const(s.clone().into()),
            Expr::Number(n) => Src::Const(n.to_string().into()),
            Expr::Field(path) => {
                let path = path.strip_suffix(".data").unwrap_or(path);
                if let Some(h) = HeaderField::from_name(path) {
                    return Some(Src::Header(h));
                }
                let Some((scope, all)) = layouts else {
                    self.error(
                        at,
                        format!("`{path}`: records of unknown types have only recordType, recordLength, archiveTimestamp, netmapId and payload"),
                    );
                    return None;
                };
                let cat = catalog();
                match scope.field_ref(cat, path) {
                    Some(r) => Src::Field(r, path.into()),
                    None if all.iter().any(|s| s.field_ref(cat, path).is_some()) => {
                        // In another layout of the same record type (e.g. 71's block 160 lacks
                        // fields of block 163): absent here.
                        Src::Const("".into())
                    }
                    None => {
                        let suggestions = suggest(
                            path,
                            all.iter().flat_map(|s| {
                                s.fields
                                    .iter()
                                    .filter(|f| !f.hidden)
                                    .map(|f| f.path.to_string())
                            }),
                        );
                        self.error(
                            at,
                            format!(
                                "record {} has no field `{path}`{}",
                                record_type.map(|t| t.to_string()).unwrap_or_default(),
                                if suggestions.is_empty() {
                                    String::new()
                                } else {
                                    format!("; did you mean {}?", suggestions.join(", "))
                                }
                            ),
                        );
                        return None;
                    }
                }
            }
            Expr::Resolved(name) => {
                let r = rules();
                let Some(id) = r.name_id(name) else {
                    let hint = did_you_mean_names(name, r.names().iter().cloned());
                    self.error(at, format!("`@{name}` is not a resolved name{hint}"));
                    return None;
                };
                let Some((scope, all)) = layouts else {
                    self.error(
                        at,
                        format!("`@{name}`: records of unknown types have no resolved names"),
                    );
                    return None;
                };
                let (Some(t), cat) = (record_type, catalog()) else {
                    return None;
                };
                let schema = cat.record(t)?;
                match r.for_scope(schema, scope).resolver(id) {
                    Some(cr) => Src::Resolved(
                        Arc::new(cr.clone()),
                        name.clone().into(),
                        self.memo_slots
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    ),
                    None if all
                        .iter()
                        .any(|s| r.for_scope(schema, s).resolver(id).is_some()) =>
                    {
                        Src::Const("".into())
                    }
                    None => {
                        let here: Vec<String> = r
                            .for_scope(schema, scope)
                            .resolve
                            .iter()
                            .map(|c| r.name(c.name).to_string())
                            .collect();
                        let hint = did_you_mean_names(name, here.iter().cloned());
                        self.error(
                            at,
                            format!("`@{name}` does not resolve for record {t}{hint}"),
                        );
                        return None;
                    }
                }
            }
            Expr::Call(func, args) => {
                let mut a = Vec::with_capacity(args.len());
                for (i, x) in args.iter().enumerate() {
                    // lookup's table and truncate's length are not expressions.
                    if (*func == Func::Lookup || *func == Func::Truncate) && i == 1 {
                        continue;
                    }
                    a.push(self.compile_expr(x, at, record_type, layouts)?);
                }
                let one = |a: &mut Vec<Src>| Box::new(a.remove(0));
                match func {
                    Func::Ms => {
                        let sec = one(&mut a);
                        Src::Ms(sec, a.pop().map(Box::new))
                    }
                    Func::Ipv4 => Src::Ipv4(one(&mut a)),
                    Func::Ipv6 => Src::Ipv6(one(&mut a)),
                    Func::Hex => Src::Hex(one(&mut a)),
                    Func::Ascii => Src::Ascii(one(&mut a)),
                    Func::AsciiOnly => Src::AsciiOnly(one(&mut a)),
                    Func::L7 => Src::L7(one(&mut a)),
                    Func::First => Src::First(a),
                    Func::Truncate => match &args[1] {
                        Expr::Number(n) => Src::Truncate(one(&mut a), *n as usize),
                        _ => {
                            self.error(at, "truncate(x, n): n must be a number".into());
                            return None;
                        }
                    },
                    Func::Lookup => {
                        let name = match &args[1] {
                            Expr::Field(n) | Expr::Const(n) => n.clone(),
                            _ => String::new(),
                        };
                        match self.tables.get(&name) {
                            Some(t) => Src::Lookup(one(&mut a), t.clone()),
                            None => {
                                let known: Vec<&String> = self.tables.keys().collect();
                                self.error(
                                    at,
                                    format!("lookup table `{name}` is not defined in this file ([tables.{name}]); defined: {known:?}"),
                                );
                                return None;
                            }
                        }
                    }
                }
            }
        })
    }
}

/// `csNLabel` → `csN` for the custom-field families.
fn label_base(key: &str) -> Option<&str> {
    let base = key.strip_suffix("Label")?;
    is_custom_family(base).then_some(base)
}

fn is_custom_family(key: &str) -> bool {
    const FAMILIES: [(&str, u32); 7] = [
        ("cs", 6),
        ("cn", 3),
        ("cfp", 4),
        ("c6a", 4),
        ("deviceCustomDate", 2),
        ("flexString", 2),
        ("flexDate", 1),
    ];
    FAMILIES.iter().any(|(prefix, max)| {
        key.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=*max).contains(&n))
    })
}

/// "; did you mean `@a`, `@b`?" for a misspelled resolved name, or nothing.
fn did_you_mean_names(wrong: &str, known: impl Iterator<Item = String>) -> String {
    let s = suggest(wrong, known);
    if s.is_empty() {
        return String::new();
    }
    let names: Vec<String> = s.iter().map(|x| x.replacen('`', "`@", 1)).collect();
    format!("; did you mean {}?", names.join(", "))
}

fn list_toml(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read the mappings folder: {e}")),
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_families_and_labels() {
        assert_eq!(label_base("cs1Label"), Some("cs1"));
        assert_eq!(label_base("c6a3Label"), Some("c6a3"));
        assert_eq!(label_base("fooLabel"), None);
        assert!(is_custom_family("deviceCustomDate2"));
        assert!(!is_custom_family("cs7"));
    }
}
