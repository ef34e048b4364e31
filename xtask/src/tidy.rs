//! `cargo xtask tidy`: cheap source checks, in the style of rust-analyzer's `xtask/src/tidy.rs`.
//! They run right after `cargo fmt --check` in `cargo xtask test` (its unit tests below run
//! under `cargo test`). Every problem is reported as `file:line: what`.
//!
//! 1. Layering: each file under a layer of `shared/src` imports only the layers below it (the
//!    design's "Allowed dependencies" table, restated in `DIRECT`), and nothing lives outside
//!    the layers.
//! 2. Doc references: a test named in a comment or in the README (`tests::<name>`, or a
//!    backticked snake_case name of five or more words) exists.
//! 3. Wrangler parity: `wrangler/*.jsonc` agree with the consts of `shared::bindings`.
//! 4. The README's "Two commands" block holds exactly `cargo xtask run` and `cargo xtask test`.

use crate::Result;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};

/// Runs every check on this repository.
pub fn run() -> Result<()> {
    run_at(&crate::root())
}

/// Runs every check on the repository at `root` (a scratch copy, say).
pub fn run_at(root: &Path) -> Result<()> {
    let mut t = Tidy {
        root: root.to_path_buf(),
        problems: Vec::new(),
    };
    t.layering();
    t.sql_only_in_store();
    t.doc_references();
    wrangler_configs_match_the_binding_consts(&mut t);
    t.readme_two_commands();
    if t.problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tidy found {} problem(s):\n  {}",
            t.problems.len(),
            t.problems.join("\n  ")
        ))
    }
}

struct Tidy {
    root: PathBuf,
    problems: Vec<String>,
}

/// `file:line: what`, the form of every problem.
fn located(file: &Path, line: usize, what: impl Display) -> String {
    format!("{}:{line}: {what}", file.display())
}

impl Tidy {
    fn report(&mut self, path: &Path, line: usize, what: impl Display) {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        self.problems.push(located(rel, line, what));
    }

    fn read(&mut self, path: &Path) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                self.report(path, 1, format!("cannot read: {e}"));
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Layering of shared/src.

/// The layers: folders (or, for `ports`, `tests` and the like, single files) directly under
/// `shared/src/`.
const LAYERS: &[&str] = &[
    "domain", "ports", "store", "services", "api", "jobs", "consumer", "operator", "testing",
    "tests",
];

/// What each layer imports directly (besides itself); it may import the transitive closure
/// (`may_import`). Layers and top-level files not listed import nothing. `testing`, `tests`
/// and `lib.rs` may import anything. `operator` (the operator Worker) builds on the API's HTTP
/// toolkit, so it imports `api` (and `api` never imports it); it may also import `jobs`, but
/// only from `operator/jobs.rs` (the scheduler's side of a job run, see `allowed`).
const DIRECT: &[(&str, &[&str])] = &[
    ("domain", &["bindings"]),
    ("ports", &["domain"]),
    ("store", &["ports", "migrations"]),
    ("services", &["store"]),
    ("api", &["services"]),
    ("jobs", &["services"]),
    ("consumer", &["services"]),
    ("operator", &["api"]),
];
const ANYTHING: &[&str] = &["testing", "tests", "lib"];
/// Files directly in `shared/src/` that are not layers.
const TOP_FILES: &[&str] = &["lib", "bindings", "migrations"];

/// Everything `layer` may import besides itself: the transitive closure of `DIRECT`, nearest
/// first.
fn may_import(layer: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut todo = vec![layer];
    while let Some(l) = todo.pop() {
        for (_, to) in DIRECT.iter().filter(|(from, _)| *from == l) {
            for t in *to {
                if !out.contains(t) {
                    out.push(t);
                    todo.push(t);
                }
            }
        }
    }
    out
}

/// Whether a file of layer `from` (at `rel`, relative to `shared/src`) may import `to`.
fn allowed(from: &str, rel: &Path, to: &str) -> bool {
    if from == to || ANYTHING.contains(&from) || is_test_file(rel) {
        return true;
    }
    if from == "operator" && to == "jobs" {
        return rel == Path::new("operator/jobs.rs");
    }
    may_import(from).contains(&to)
}

/// Test code may import anything. Test code is a file named `tests.rs` (anywhere) or a file
/// under a `tests/` folder; nothing else: an inline `#[cfg(test)] mod` block is NOT exempt, its
/// imports are checked like the rest of its file (shared keeps its tests in files).
fn is_test_file(rel: &Path) -> bool {
    rel.file_name() == Some("tests.rs".as_ref())
        || rel
            .parent()
            .is_some_and(|p| p.components().any(|c| c.as_os_str() == "tests"))
}

impl Tidy {
    fn layering(&mut self) {
        let src = self.root.join("shared/src");
        let mut top: Vec<PathBuf> = match std::fs::read_dir(&src) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return self.report(&src, 1, format!("cannot list: {e}")),
        };
        top.sort();
        for path in top {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let layer = name.trim_end_matches(".rs");
            if !path.is_dir() && !name.ends_with(".rs") {
                continue;
            }
            if !LAYERS.contains(&layer) && !TOP_FILES.contains(&layer) {
                self.report(
                    &path,
                    1,
                    format!(
                        "module `{layer}` is outside the layers ({}): move it into one",
                        LAYERS.join(", ")
                    ),
                );
                continue;
            }
            for file in rs_files(&path) {
                let Some(text) = self.read(&file) else {
                    continue;
                };
                let rel = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
                for v in layering_violations(layer, &rel, &text) {
                    self.report(&file, v.0, v.1);
                }
            }
        }
    }
}

impl Tidy {
    /// SQL lives in `store/` alone: a statement built anywhere else (`Stmt::new(`) outside test
    /// code is a problem.
    fn sql_only_in_store(&mut self) {
        let src = self.root.join("shared/src");
        for file in rs_files(&src) {
            let rel = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
            if rel.starts_with("store") || rel.starts_with("testing") || is_test_file(&rel) {
                continue;
            }
            let Some(text) = self.read(&file) else {
                continue;
            };
            for line in statements_built_outside_store(&text) {
                self.report(
                    &file,
                    line,
                    "a SQL statement outside store/: move it to the store file of its table family",
                );
            }
        }
    }
}

/// Lines (1-based) of a source that build a statement, comments left out.
fn statements_built_outside_store(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let code = l.split("//").next().unwrap_or("");
            code.contains("Stmt::new(")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// The forbidden imports of one file of `layer`: (line, message).
/// An alias of the crate root (`crate as x`, `crate::{self as x}`) is reported as the head
/// `self`, which like any head that is not a layer stands for lib.rs.
fn layering_violations(layer: &str, rel: &Path, text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (line, head) in crate_imports(text, &module_path(rel)) {
        let to = if LAYERS.contains(&head.as_str()) || TOP_FILES.contains(&head.as_str()) {
            head.as_str()
        } else {
            "lib"
        };
        if allowed(layer, rel, to) {
            continue;
        }
        let msg = if head == "self" {
            "alias of the crate root: import by layer path".to_string()
        } else if to == "lib" {
            format!(
                "`crate::{head}` is not a layer module: `{layer}` imports it from the layer that \
                 defines it (lib.rs is the facade for the Workers)"
            )
        } else if to == "jobs" && layer == "operator" {
            format!("`operator` imports `crate::{head}` only from operator/jobs.rs")
        } else {
            let may = may_import(layer).join(", ");
            format!(
                "`{layer}` must not import `crate::{head}` (it may import: {})",
                if may.is_empty() { "nothing" } else { &may }
            )
        };
        out.push((line, msg));
    }
    out
}

/// The module path of a file relative to `shared/src`: `api/admin/jobs.rs` is
/// `[api, admin, jobs]`, `jobs/mod.rs` is `[jobs]`, `lib.rs` is `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut path: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
        path.pop();
    }
    path
}

/// The first segment of every path that leaves the file's layer, with its line:
/// `crate::<name>` (also in groups: `use crate::{a, b::c}` gives `a` and `b`), and `super::`
/// chains that climb to the crate root. An alias of the crate root (`use crate as x`,
/// `crate::{self as x}`, `crate::self`, `extern crate self as x`) gives `self`. Comments and
/// string literals are skipped; so are `$crate`, `pub(in crate::x)` and macros (`crate::m!`).
fn crate_imports(text: &str, file_module: &[String]) -> Vec<(usize, String)> {
    let toks: Vec<Token> = lex(text)
        .into_iter()
        .filter(|t| !matches!(t.tok, Tok::Comment(_)))
        .collect();
    let mut out = Vec::new();
    // Inline modules (`mod x { ... }`) deepen the module path that `super` climbs from.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let prev = |k: usize| i.checked_sub(k).map(|j| &toks[j].tok);
        match &toks[i].tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident("mod") => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) = (
                    toks.get(i + 1).map(|t| &t.tok),
                    toks.get(i + 2).map(|t| &t.tok),
                ) {
                    inline.push((name.to_string(), depth + 1));
                }
            }
            Tok::Ident("crate") if toks.get(i + 1).map(|t| &t.tok) == Some(&Tok::PathSep) => {
                let dollar = prev(1) == Some(&Tok::Punct('$'));
                let vis = prev(1) == Some(&Tok::Ident("in")) && prev(2) == Some(&Tok::Punct('('));
                if !dollar && !vis {
                    let mut heads = Vec::new();
                    i = use_tree_heads(&toks, i + 2, &mut heads);
                    out.extend(heads);
                    continue;
                }
            }
            Tok::Ident("crate")
                if prev(1) != Some(&Tok::Punct('$'))
                    && matches!(
                        toks.get(i + 1).map(|t| &t.tok),
                        Some(Tok::Ident("as" | "self"))
                    ) =>
            {
                out.push((toks[i].line, "self".to_string()));
            }
            Tok::Ident("super")
                if toks.get(i + 1).map(|t| &t.tok) == Some(&Tok::PathSep)
                    && prev(1) != Some(&Tok::PathSep) =>
            {
                let mut ups = 0;
                let mut j = i;
                while toks.get(j).map(|t| &t.tok) == Some(&Tok::Ident("super"))
                    && toks.get(j + 1).map(|t| &t.tok) == Some(&Tok::PathSep)
                {
                    ups += 1;
                    j += 2;
                }
                let here = file_module.len() + inline.len();
                let mut heads = Vec::new();
                i = use_tree_heads(&toks, j, &mut heads);
                if ups == here {
                    out.extend(heads);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The heads of the use tree at `toks[i]` (an identifier, `*` or a `{...}` group); returns the
/// index just past the tree. A `self` here is the crate root itself (rustc accepts it only
/// renamed, `{self as x}`), and is returned as the head `self`.
fn use_tree_heads(toks: &[Token], i: usize, out: &mut Vec<(usize, String)>) -> usize {
    let Some(t) = toks.get(i) else {
        return i;
    };
    match &t.tok {
        Tok::Ident(name) => {
            let is_macro = toks.get(i + 1).map(|t| &t.tok) == Some(&Tok::Punct('!'));
            if !is_macro {
                out.push((t.line, name.to_string()));
            }
            skip_path(toks, i + 1)
        }
        Tok::Punct('*') => {
            out.push((t.line, "*".to_string()));
            i + 1
        }
        Tok::Punct('{') => {
            let mut j = i + 1;
            loop {
                match toks.get(j).map(|t| &t.tok) {
                    None => return j,
                    Some(Tok::Punct('}')) => return j + 1,
                    Some(Tok::Punct(',')) => j += 1,
                    Some(_) => {
                        let next = use_tree_heads(toks, j, out);
                        j = next.max(j + 1);
                    }
                }
            }
        }
        _ => i + 1,
    }
}

/// Past the rest of a path: `::seg`, `::{...}`, `::*`, `as name`.
fn skip_path(toks: &[Token], mut j: usize) -> usize {
    loop {
        match toks.get(j).map(|t| &t.tok) {
            Some(Tok::PathSep) => match toks.get(j + 1).map(|t| &t.tok) {
                Some(Tok::Punct('{')) => {
                    let mut depth = 0;
                    j += 1;
                    while let Some(t) = toks.get(j) {
                        match t.tok {
                            Tok::Punct('{') => depth += 1,
                            Tok::Punct('}') => depth -= 1,
                            _ => {}
                        }
                        j += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
                Some(Tok::Ident(_) | Tok::Punct('*')) => j += 2,
                _ => return j,
            },
            Some(Tok::Ident("as")) => j += 2,
            _ => return j,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Doc references to tests.

/// Where comments are read for references (definitions are also read from `bench/`).
const COMMENT_DIRS: &[&str] = &[
    "shared",
    "platform",
    "producers",
    "consumers",
    "schedulers",
    "tests",
    "xtask",
];
const DOCS: &[&str] = &["README.md", "ARCHITECTURE.md", "bench/README.md"];

/// Everything a reference may resolve to, gathered from the workspace's .rs files.
#[derive(Default)]
struct Defined {
    /// `fn` and `mod` names, and the names of the integration tests (string literals in
    /// `tests/*.rs`, whose tests are a table of `("name", fn)` pairs).
    tests: BTreeSet<String>,
    /// Also consts, statics, types, fields, bindings and every word of a string literal.
    any: BTreeSet<String>,
}

impl Defined {
    /// Gathers the names defined by one file's tokens (comments included, as `lex` gives them).
    fn visit(&mut self, toks: &[Token], integration: bool) {
        for (i, t) in toks.iter().enumerate() {
            let next = toks.get(i + 1).map(|t| &t.tok);
            match (&t.tok, next) {
                (Tok::Ident(kw), Some(Tok::Ident(name))) => {
                    if matches!(*kw, "fn" | "mod") {
                        self.tests.insert(name.to_string());
                    }
                    if matches!(
                        *kw,
                        "fn" | "mod"
                            | "const"
                            | "static"
                            | "struct"
                            | "enum"
                            | "union"
                            | "type"
                            | "trait"
                            | "let"
                            | "mut"
                    ) {
                        self.any.insert(name.to_string());
                    }
                }
                // A field (or a parameter, or a struct literal's field).
                (Tok::Ident(name), Some(Tok::Punct(':'))) => {
                    self.any.insert(name.to_string());
                }
                (Tok::Str(s), _) => {
                    if integration {
                        self.tests.insert(s.to_string());
                    }
                    self.any.insert(s.to_string());
                    for w in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                        self.any.insert(w.to_string());
                    }
                }
                _ => {}
            }
        }
    }
}

impl Tidy {
    fn doc_references(&mut self) {
        let mut defined = Defined::default();
        let mut comments: Vec<(PathBuf, usize, String)> = Vec::new();
        for dir in COMMENT_DIRS.iter().chain(&["bench"]) {
            for file in rs_files(&self.root.join(dir)) {
                let Some(text) = self.read(&file) else {
                    continue;
                };
                let integration = file.parent() == Some(self.root.join("tests").as_path());
                let toks = lex(&text);
                defined.visit(&toks, integration);
                if *dir == "bench" {
                    continue;
                }
                for t in toks {
                    if let Tok::Comment(c) = t.tok {
                        for (k, l) in c.lines().enumerate() {
                            comments.push((file.clone(), t.line + k, l.to_string()));
                        }
                    }
                }
            }
        }
        for doc in DOCS {
            let path = self.root.join(doc);
            if let Ok(text) = std::fs::read_to_string(&path) {
                for (k, l) in text.lines().enumerate() {
                    comments.push((path.clone(), k + 1, l.to_string()));
                }
            }
        }
        for (path, line, text) in comments {
            for missing in unresolved_references(&text, &defined) {
                self.report(&path, line, missing);
            }
        }
    }
}

/// The test references in one line of prose that name nothing in the workspace.
fn unresolved_references(text: &str, defined: &Defined) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("tests::") {
        let before = rest[..at].chars().next_back();
        let path: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        rest = &rest[at + path.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `my_tests::x`
        }
        // The last segment is the test; any before it are modules.
        let name = path["tests::".len()..]
            .trim_end_matches(':')
            .rsplit("::")
            .next()
            .unwrap_or("");
        if !name.is_empty() && !defined.tests.contains(name) {
            out.push(format!(
                "`{path}` names no test: no `fn {name}` in the workspace"
            ));
        }
    }
    let mut spans = text.split('`');
    spans.next(); // before the first backtick
    while let (Some(inside), Some(_)) = (spans.next(), spans.next()) {
        let name = inside.trim().trim_end_matches("()");
        if looks_like_a_test_name(name) && !defined.any.contains(name) {
            out.push(format!(
                "`{name}` looks like a test name but nothing in the workspace is called that"
            ));
        }
    }
    out
}

/// snake_case of at least five words (so at least four underscores), like
/// `a_write_that_lost_its_race_emits_no_event_even_at_the_same_version`.
fn looks_like_a_test_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.split('_').filter(|w| !w.is_empty()).count() >= 5
}

// ---------------------------------------------------------------------------------------------
// 3. Wrangler configs against shared::bindings (this was a unit test in shared/src/tests.rs).

/// The string consts of `shared::bindings`, read from its source (xtask does not depend on
/// `shared`, so that it builds, and tidy runs, while `shared` does not compile).
struct Bindings {
    /// Relative to the repository root, for messages.
    path: PathBuf,
    strs: BTreeMap<String, String>,
    lists: BTreeMap<String, Vec<String>>,
}

impl Bindings {
    fn read(root: &Path) -> Result<Bindings> {
        let src = root.join("shared/src");
        let path = src.join("bindings.rs");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut b = Bindings {
            path: path.strip_prefix(root).unwrap_or(&path).to_path_buf(),
            strs: BTreeMap::new(),
            lists: BTreeMap::new(),
        };
        let toks: Vec<Tok> = lex(&text)
            .into_iter()
            .map(|t| t.tok)
            .filter(|t| !matches!(t, Tok::Comment(_)))
            .collect();
        for (i, t) in toks.iter().enumerate() {
            if t != &Tok::Ident("const") {
                continue;
            }
            let Some(Tok::Ident(name)) = toks.get(i + 1) else {
                continue;
            };
            let Some(eq) = toks[i..].iter().position(|t| t == &Tok::Punct('=')) else {
                continue;
            };
            match toks.get(i + eq + 1) {
                Some(Tok::Str(s)) => {
                    b.strs.insert(name.to_string(), s.to_string());
                }
                Some(Tok::Punct('[')) => {
                    let mut items = Vec::new();
                    for t in &toks[i + eq + 2..] {
                        match t {
                            Tok::Punct(']') => break,
                            Tok::Str(s) => items.push(s.to_string()),
                            Tok::Ident(id) => {
                                items.push(b.strs.get(*id).cloned().ok_or_else(|| {
                                    format!("{}: `{name}` lists unknown `{id}`", b.path.display())
                                })?)
                            }
                            _ => {}
                        }
                    }
                    b.lists.insert(name.to_string(), items);
                }
                _ => {}
            }
        }
        Ok(b)
    }

    fn s(&self, name: &str) -> Result<&str> {
        self.strs
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("{}: no string const `{name}`", self.path.display()))
    }

    fn list(&self, name: &str) -> Result<&[String]> {
        self.lists
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("{}: no list const `{name}`", self.path.display()))
    }
}

/// One `wrangler/*.jsonc`, as text (for line numbers) and as JSON.
struct Config {
    name: String,
    text: String,
    json: Value,
}

impl Config {
    fn read(root: &Path, name: &str) -> Result<Config> {
        let path = root.join("wrangler").join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("wrangler/{name}: {e}"))?;
        let json = serde_json::from_str(&strip_jsonc(&text))
            .map_err(|e| format!("wrangler/{name}: not JSONC: {e}"))?;
        Ok(Config {
            name: name.to_string(),
            text,
            json,
        })
    }

    /// A problem on the line of the last of `needles`, each looked up after the one before (a
    /// guide, not a parser).
    fn problem_at(&self, needles: &[String], what: impl Display) -> String {
        let mut at = 0;
        for n in needles {
            if let Some(k) = self.text[at..].find(n.as_str()) {
                at += k;
            }
        }
        let line = self.text[..at].matches('\n').count() + 1;
        located(&Path::new("wrangler").join(&self.name), line, what)
    }

    /// A problem on the line of a JSON pointer's last key (its keys looked up in order).
    fn problem(&self, pointer: &str, what: impl Display) -> String {
        let keys: Vec<String> = pointer
            .split('/')
            .filter(|s| !s.is_empty() && s.parse::<usize>().is_err())
            .map(|s| format!("\"{s}\""))
            .collect();
        self.problem_at(&keys, what)
    }

    fn at(&self, pointer: &str) -> &Value {
        self.json.pointer(pointer).unwrap_or(&Value::Null)
    }

    fn array(&self, pointer: &str) -> Result<&Vec<Value>> {
        self.at(pointer)
            .as_array()
            .ok_or_else(|| self.problem(pointer, format!("{pointer} is not an array")))
    }

    /// The value at `pointer` is the const `name` of `shared::bindings`.
    fn expect_const(&self, pointer: &str, b: &Bindings, name: &str, out: &mut Vec<String>) {
        let want = match b.s(name) {
            Ok(v) => v,
            Err(e) => return out.push(e),
        };
        let got = self.at(pointer);
        if got != want {
            out.push(self.problem(
                pointer,
                format!("{pointer} is {got}, but shared::bindings::{name} is {want:?}"),
            ));
        }
    }
}

/// JSONC -> JSON: drop comment lines and trailing commas.
pub(crate) fn strip_jsonc(s: &str) -> String {
    let s: String = s
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    for (i, c) in s.char_indices() {
        if c == ',' && s[i + 1..].trim_start().starts_with(['}', ']']) {
            continue;
        }
        out.push(c);
    }
    out
}

/// The binding, queue, variable and cron names of `shared::bindings` are the ones the wrangler
/// configs declare, and every storage binding states the EU jurisdiction.
fn wrangler_configs_match_the_binding_consts(t: &mut Tidy) {
    let mut out = Vec::new();
    if let Err(e) = wrangler_parity(&t.root, &mut out) {
        out.push(e);
    }
    t.problems.extend(out);
}

pub(crate) fn wrangler_parity(root: &Path, out: &mut Vec<String>) -> Result<()> {
    let b = Bindings::read(root)?;
    let api = Config::read(root, "api.jsonc")?;
    let d1 = api
        .array("/d1_databases")?
        .iter()
        .map(|d| {
            d["binding"]
                .as_str()
                .ok_or_else(|| api.problem("/d1_databases", format!("{d} has no binding")))
        })
        .collect::<Result<Vec<&str>>>()?;
    let accounts = b.s("ACCOUNTS_DB")?;
    if !d1.contains(&accounts) {
        out.push(api.problem(
            "/d1_databases",
            format!("no D1 binding {accounts:?} (shared::bindings::ACCOUNTS_DB)"),
        ));
    }
    let var = format!("/vars/{}", b.s("SHARD_BINDINGS_VAR")?);
    let shards = api
        .at(&var)
        .as_str()
        .ok_or_else(|| api.problem("/vars", format!("{var} is not a string")))?;
    let prefix = b.s("SHARD_BINDING_PREFIX")?;
    for s in shards.split(',') {
        if !(s.starts_with(prefix) && d1.contains(&s)) {
            out.push(api.problem(
                &var,
                format!("{s} in {var} is not a bound D1 named {prefix}* (SHARD_BINDING_PREFIX)"),
            ));
        }
    }
    api.expect_const("/kv_namespaces/0/binding", &b, "CACHE_KV", out);
    api.expect_const("/r2_buckets/0/binding", &b, "DOCUMENTS_R2", out);
    api.expect_const(
        "/queues/producers/0/binding",
        &b,
        "CHANGE_EVENTS_QUEUE",
        out,
    );
    api.expect_const(
        "/queues/producers/0/queue",
        &b,
        "CHANGE_EVENTS_QUEUE_NAME",
        out,
    );

    // The bench's JS twin sends its creates' events to the product's queue (bench/twin-js).
    let twin = Config::read(root, "bench-twin-js.jsonc")?;
    for (pointer, name) in [
        ("/queues/producers/0/binding", "CHANGE_EVENTS_QUEUE"),
        ("/queues/producers/0/queue", "CHANGE_EVENTS_QUEUE_NAME"),
    ] {
        twin.expect_const(pointer, &b, name, out);
    }

    let consumer = Config::read(root, "consumer.jsonc")?;
    consumer.expect_const(
        "/queues/consumers/0/queue",
        &b,
        "CHANGE_EVENTS_QUEUE_NAME",
        out,
    );
    consumer.expect_const(
        "/queues/consumers/0/dead_letter_queue",
        &b,
        "CHANGE_EVENTS_DLQ_NAME",
        out,
    );
    let consumers = consumer.array("/queues/consumers")?;
    for name in ["PLATFORM_EVENTS_QUEUE_NAME", "INDEX_JOBS_QUEUE_NAME"] {
        let q = b.s(name)?;
        if !consumers.iter().any(|c| c["queue"] == q) {
            out.push(consumer.problem(
                "/queues/consumers",
                format!("no consumer of {q:?} (shared::bindings::{name})"),
            ));
        }
    }

    let sched = Config::read(root, "scheduler.jsonc")?;
    let (binding, queue) = (
        b.s("PLATFORM_EVENTS_QUEUE")?,
        b.s("PLATFORM_EVENTS_QUEUE_NAME")?,
    );
    if !sched
        .array("/queues/producers")?
        .iter()
        .any(|p| p["binding"] == binding && p["queue"] == queue)
    {
        out.push(sched.problem(
            "/queues/producers",
            format!(
                "no producer {binding:?} of {queue:?} (PLATFORM_EVENTS_QUEUE, \
                 PLATFORM_EVENTS_QUEUE_NAME)"
            ),
        ));
    }
    let all_crons = b.list("ALL_CRONS")?;
    let crons = sched
        .array("/triggers/crons")?
        .iter()
        .map(|c| {
            c.as_str()
                .map(str::to_string)
                .ok_or_else(|| sched.problem("/triggers/crons", format!("{c} is not a string")))
        })
        .collect::<Result<Vec<String>>>()?;
    if crons != all_crons {
        out.push(sched.problem(
            "/triggers/crons",
            format!("crons are {crons:?}, shared::bindings::ALL_CRONS is {all_crons:?}"),
        ));
    }
    let prod = "/env/production/triggers/crons";
    if sched.at(prod) != &serde_json::json!(all_crons) {
        out.push(sched.problem(
            prod,
            format!(
                "{prod} is {}, shared::bindings::ALL_CRONS is {all_crons:?}",
                sched.at(prod)
            ),
        ));
    }

    // The operator plane is its own Worker: it reaches the scheduler through its service
    // binding, and the tenant API Workers hold no operator secret in any environment.
    let ops = Config::read(root, "operator.jsonc")?;
    let svc = b.s("SCHEDULER_SERVICE")?;
    for env in ["", "/env/production"] {
        let services = ops.at(&format!("{env}/services"));
        if !services.as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s["binding"] == svc && s["service"] == sched.json["name"])
        }) {
            out.push(ops.problem(
                &format!("{env}/services"),
                format!("no service binding {svc:?} to the scheduler (shared::bindings::SCHEDULER_SERVICE)"),
            ));
        }
    }
    let admin = b.s("ADMIN_SECRET")?;
    let mut apis = vec![
        "api.jsonc".to_string(),
        "api-dedicated-01.jsonc".to_string(),
    ];
    apis.extend(
        crate::dedicated::generated(root)
            .into_iter()
            .filter_map(|(c, _)| c.strip_prefix("wrangler/").map(str::to_owned)),
    );
    for name in &apis {
        let cfg = Config::read(root, name)?;
        for env in ["", "/env/production"] {
            let required = cfg.at(&format!("{env}/secrets/required"));
            if required
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s == admin))
            {
                out.push(cfg.problem(
                    &format!("{env}/secrets/required"),
                    format!("the tenant API requires {admin:?}: it belongs to the operator Worker"),
                ));
            }
        }
    }

    // Every storage binding of EVERY config in wrangler/ (bench and local-only ones too, in
    // every env block) states the EU jurisdiction where the config has a field for it.
    let dir = root.join("wrangler");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonc"))
        .collect();
    names.sort();
    let mut checked = 0;
    for name in names {
        let cfg = Config::read(root, &name)?;
        let mut envs = vec![(String::new(), &cfg.json)];
        if let Some(e) = cfg.json["env"].as_object() {
            envs.extend(e.iter().map(|(k, v)| (format!("/env/{k}"), v)));
        }
        for (env, value) in envs {
            for kind in ["d1_databases", "r2_buckets"] {
                for d in value[kind].as_array().into_iter().flatten() {
                    checked += 1;
                    if d["jurisdiction"] != "eu" {
                        let mut at: Vec<String> =
                            env.split('/').skip(1).map(|k| format!("\"{k}\"")).collect();
                        at.push(format!("\"{kind}\""));
                        at.push(d["binding"].to_string());
                        out.push(cfg.problem_at(
                            &at,
                            format!("{env}/{kind}: {d} has no \"jurisdiction\": \"eu\""),
                        ));
                    }
                }
            }
        }
    }
    if checked <= 20 {
        out.push(format!(
            "wrangler/: only {checked} storage bindings found (expected more than 20)"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. The README's two commands.

impl Tidy {
    fn readme_two_commands(&mut self) {
        let path = self.root.join("README.md");
        let Some(text) = self.read(&path) else {
            return;
        };
        let lines: Vec<&str> = text.lines().collect();
        let Some(h) = lines.iter().position(|l| l.trim() == "## Two commands") else {
            return self.report(&path, 1, "no \"## Two commands\" section");
        };
        let Some(open) = (h..lines.len()).find(|&k| lines[k].starts_with("```")) else {
            return self.report(&path, h + 1, "\"## Two commands\" has no code block");
        };
        let commands: Vec<&str> = lines[open + 1..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .collect();
        if commands != ["cargo xtask run", "cargo xtask test"] {
            self.report(
                &path,
                open + 1,
                format!(
                    "the \"Two commands\" block must be exactly `cargo xtask run` and \
                     `cargo xtask test`, not {commands:?}"
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files and a small Rust lexer (enough to tell code from comments and string literals).

/// The .rs files at or under `path`, sorted; build output and dependencies are skipped.
fn rs_files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
        return out;
    }
    let Ok(rd) = std::fs::read_dir(path) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        if p.is_dir() && (name.starts_with('.') || ["target", "node_modules"].contains(&&*name)) {
            continue;
        }
        out.extend(rs_files(&p));
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'s> {
    Ident(&'s str),
    /// `::`
    PathSep,
    Punct(char),
    /// A string literal's contents, escapes left as written.
    Str(&'s str),
    /// A line or block comment, with its `//` or `/*`.
    Comment(&'s str),
}

#[derive(Debug)]
struct Token<'s> {
    tok: Tok<'s>,
    line: usize,
}

fn lex(src: &str) -> Vec<Token<'_>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        let start = i;
        let start_line = line;
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Comment(&src[start..i]),
                line,
            });
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(b[i] == b'\n');
                    i += 1;
                }
            }
            out.push(Token {
                tok: Tok::Comment(&src[start..i]),
                line: start_line,
            });
        } else if c == b'"' {
            i = lex_string(src, i + 1, false, 0, &mut line, &mut out);
        } else if c == b'\'' {
            // A char literal ('x', '\n', '"') or a lifetime/label ('a).
            let next = src[i + 1..].chars().next();
            let after = next.map(|n| i + 1 + n.len_utf8());
            if next == Some('\\') {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1 + usize::from(b[i] == b'\\');
                }
                i += 1;
            } else if after.is_some_and(|a| b.get(a) == Some(&b'\'')) {
                i = after.unwrap_or(i) + 1;
            } else {
                i += 1;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
            }
        } else if ident(c) {
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = &src[start..i];
            let raw = matches!(word, "r" | "br" | "cr");
            if matches!(word, "b" | "c" | "br" | "cr" | "r") && b.get(i) == Some(&b'"') {
                i = lex_string(src, i + 1, raw, 0, &mut line, &mut out);
            } else if raw && b.get(i) == Some(&b'#') {
                let hashes = b[i..].iter().take_while(|&&h| h == b'#').count();
                if b.get(i + hashes) == Some(&b'"') {
                    i = lex_string(src, i + hashes + 1, true, hashes, &mut line, &mut out);
                } else {
                    // A raw identifier, `r#type`.
                    i += 1;
                    let s = i;
                    while i < b.len() && ident(b[i]) {
                        i += 1;
                    }
                    out.push(Token {
                        tok: Tok::Ident(&src[s..i]),
                        line,
                    });
                }
            } else if word == "b" && b.get(i) == Some(&b'\'') {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1 + usize::from(b[i] == b'\\');
                }
                i += 1;
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else if b[i..].starts_with(b"::") {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            if ch.is_ascii() {
                out.push(Token {
                    tok: Tok::Punct(ch),
                    line,
                });
            }
            i += ch.len_utf8();
        }
    }
    out
}

/// A string literal whose contents start at `i` (`raw`: no escapes, ends with `hashes` `#`s).
/// Returns the index past its end.
fn lex_string<'s>(
    src: &'s str,
    mut i: usize,
    raw: bool,
    hashes: usize,
    line: &mut usize,
    out: &mut Vec<Token<'s>>,
) -> usize {
    let b = src.as_bytes();
    let (start, start_line) = (i, *line);
    while i < b.len() {
        if b[i] == b'"'
            && b[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == b'#')
                .count()
                == hashes
        {
            out.push(Token {
                tok: Tok::Str(&src[start..i]),
                line: start_line,
            });
            return i + 1 + hashes;
        }
        if b[i] == b'\\' && !raw {
            i += 1; // the escaped character is skipped below (a newline is still counted)
        }
        if b.get(i) == Some(&b'\n') {
            *line += 1;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(src: &str, module: &[&str]) -> Vec<String> {
        let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
        crate_imports(src, &module)
            .into_iter()
            .map(|(_, h)| h)
            .collect()
    }

    fn violations(layer: &str, rel: &str, src: &str) -> Vec<(usize, String)> {
        layering_violations(layer, Path::new(rel), src)
    }

    #[test]
    fn imports_are_parsed_from_paths_and_groups() {
        let src = "use crate::{domain::auth, ports::{Database, Stmt}, self};\n\
                   use crate::store::outbox as o;\n\
                   fn f() { crate::services::changes::commit(); }\n";
        assert_eq!(
            heads(src, &["api"]),
            ["domain", "ports", "self", "store", "services"]
        );
        assert_eq!(heads("use crate::*;", &["api"]), ["*"]);
    }

    #[test]
    fn comments_strings_macros_and_visibility_are_not_imports() {
        let src = "// crate::api is above us\n\
                   /* use crate::jobs; /* nested crate::api */ */\n\
                   /// see [`crate::api::handle`]\n\
                   const S: &str = \"crate::api\";\n\
                   const R: &str = r#\"crate::jobs \"quoted\"\"#;\n\
                   const C: char = '\"'; const L: &'static str = \"x\";\n\
                   pub(in crate::services) fn w() {}\n\
                   macro_rules! m { () => { $crate::api::x() } }\n\
                   fn g() { crate::log!(\"hi\"); }\n\
                   use crate::domain::clock;\n";
        assert_eq!(heads(src, &["store", "outbox"]), ["domain"]);
    }

    #[test]
    fn super_counts_only_when_it_climbs_to_the_crate_root() {
        let module = ["api", "v1", "entities"];
        assert!(heads("use super::extract::json_body;", &module).is_empty());
        assert!(heads("use super::super::context::Ctx;", &module).is_empty());
        assert_eq!(
            heads("use super::super::super::jobs::run;", &module),
            ["jobs"]
        );
        // Inside an inline module one more `super` is needed.
        let src = "mod inner { use super::super::super::jobs::run; }";
        assert!(heads(src, &module).is_empty());
        let src = "mod inner { use super::super::super::super::{jobs, store}; }\nuse super::x;";
        assert_eq!(heads(src, &module), ["jobs", "store"]);
    }

    #[test]
    fn the_rule_table_catches_upward_and_sibling_imports() {
        let v = violations(
            "store",
            "store/outbox.rs",
            "use crate::api::error_response;\n",
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, 1);
        assert!(
            v[0].1.contains("`store` must not import `crate::api`"),
            "{v:?}"
        );
        // Siblings in L3 do not import each other.
        assert_eq!(
            violations("jobs", "jobs/relay.rs", "use crate::consumer::x;").len(),
            1
        );
        assert_eq!(
            violations("consumer", "consumer/mod.rs", "use crate::jobs::x;").len(),
            1
        );
        assert_eq!(
            violations("jobs", "jobs/relay.rs", "use crate::api::x;").len(),
            1
        );
        // Only operator/jobs.rs may reach the jobs layer; the API never reaches the operator.
        assert!(violations(
            "operator",
            "operator/jobs.rs",
            "use crate::jobs::{run, Job};"
        )
        .is_empty());
        assert_eq!(
            violations("operator", "operator/handlers.rs", "use crate::jobs::Job;").len(),
            1
        );
        assert_eq!(
            violations("api", "api/admin/jobs.rs", "use crate::jobs::Job;").len(),
            1
        );
        assert_eq!(
            violations("api", "api/mod.rs", "use crate::operator::handle;").len(),
            1
        );
        assert!(violations(
            "operator",
            "operator/mod.rs",
            "use crate::api::error::ApiError;"
        )
        .is_empty());
        // Domain is pure; ports see only domain.
        assert_eq!(
            violations("domain", "domain/auth.rs", "use crate::ports::Stmt;").len(),
            1
        );
        assert!(violations(
            "domain",
            "domain/auth.rs",
            "use crate::bindings::JWT_SECRET;"
        )
        .is_empty());
        assert_eq!(
            violations("ports", "ports.rs", "use crate::store::x;").len(),
            1
        );
        // Downward and same-layer imports are fine.
        let down = "use crate::{services::changes, store::outbox, ports::Stmt, domain::clock, \
                    bindings, migrations, api::error::Problem};";
        assert!(violations("api", "api/v1/entities.rs", down).is_empty());
        // The facade's items are not a way around the layers.
        let v = violations("services", "services/changes.rs", "use crate::handle;");
        assert!(v[0].1.contains("not a layer module"), "{v:?}");
        // Test code may import anything.
        assert!(violations("store", "store/tests.rs", "use crate::api::x;").is_empty());
        assert!(violations("jobs", "jobs/tests/relay.rs", "use crate::api::x;").is_empty());
        assert!(violations("testing", "testing/harness.rs", "use crate::api::x;").is_empty());
        // An inline `#[cfg(test)] mod` is not test code: its imports are checked.
        let v = violations(
            "domain",
            "domain/auth.rs",
            "#[cfg(test)]\nmod t {\n    use crate::api::x;\n}\n",
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0, 3);
        assert!(
            v[0].1.contains("`domain` must not import `crate::api`"),
            "{v:?}"
        );
    }

    #[test]
    fn an_alias_of_the_crate_root_is_a_violation() {
        for src in [
            "use crate as root;\nfn f() { root::api::x(); }",
            "use crate::{self as c2};\nfn f() { c2::jobs::x(); }",
            "use crate::{domain::clock, self as c2};",
            "use crate::self;",
            "extern crate self as shared;",
        ] {
            let v = violations("services", "services/changes.rs", src);
            assert_eq!(v.len(), 1, "{src}: {v:?}");
            assert_eq!(v[0].0, 1);
            assert_eq!(v[0].1, "alias of the crate root: import by layer path");
        }
        // An alias through `super` chains that reach the root, too; not one of a layer.
        assert_eq!(
            violations("api", "api/router.rs", "use super::super::{self as root};").len(),
            1
        );
        assert!(violations("api", "api/v1/x.rs", "use super::{self as v1};").is_empty());
        assert!(violations(
            "store",
            "store/outbox.rs",
            "use crate::domain::{self as d};"
        )
        .is_empty());
        // Not in code that may import anything, nor in `$crate` or `pub(crate)`.
        assert!(violations("testing", "testing/harness.rs", "use crate as root;").is_empty());
        assert!(violations("api", "api/tests.rs", "use crate::{self as c};").is_empty());
        let src = "macro_rules! m { () => { use $crate as r; } }\npub(crate) use x as y;";
        assert!(violations("api", "api/mod.rs", src).is_empty());
    }

    #[test]
    fn the_closure_of_the_direct_edges_is_the_allowed_dependencies_table() {
        // The table as it was written out before `DIRECT`.
        let l3: &[&str] = &[
            "services",
            "store",
            "ports",
            "domain",
            "bindings",
            "migrations",
        ];
        let old: &[(&str, &[&str])] = &[
            ("domain", &["bindings"]),
            ("ports", &["domain", "bindings"]),
            ("store", &["ports", "domain", "bindings", "migrations"]),
            (
                "services",
                &["store", "ports", "domain", "bindings", "migrations"],
            ),
            ("jobs", l3),
            ("consumer", l3),
            ("api", l3),
            // The operator Worker's layer: the API's toolkit on top of what the API may use.
            (
                "operator",
                &[
                    "api",
                    "services",
                    "store",
                    "ports",
                    "domain",
                    "bindings",
                    "migrations",
                ],
            ),
            ("bindings", &[]),
            ("migrations", &[]),
        ];
        for (layer, may) in old {
            let got: BTreeSet<&str> = may_import(layer).into_iter().collect();
            let want: BTreeSet<&str> = may.iter().copied().collect();
            assert_eq!(got, want, "{layer}");
        }
        // Every layer and top-level file is in the table, or may import anything.
        for l in LAYERS.iter().chain(TOP_FILES) {
            assert!(
                ANYTHING.contains(l) || old.iter().any(|(k, _)| k == l),
                "{l}"
            );
        }
    }

    #[test]
    fn module_paths_follow_mod_rs() {
        assert_eq!(module_path(Path::new("jobs/mod.rs")), ["jobs"]);
        assert_eq!(
            module_path(Path::new("api/admin/jobs.rs")),
            ["api", "admin", "jobs"]
        );
        assert_eq!(module_path(Path::new("ports.rs")), ["ports"]);
        assert!(module_path(Path::new("lib.rs")).is_empty());
    }

    #[test]
    fn doc_references_resolve_to_fns_fields_strings_and_integration_tests() {
        let mut d = Defined::default();
        d.visit(
            &lex(
                "#[test] fn a_write_that_lost_its_race_emits_no_event() {}\n\
             struct S { some_long_field_name_here: u8 }\n\
             // fn not_a_real_definition_in_a_comment() {}\n",
            ),
            false,
        );
        d.visit(
            &lex("pub const TESTS: &[T] = &[(\"integration_test_name_in_a_table\", f)];"),
            true,
        );
        let ok = "see `a_write_that_lost_its_race_emits_no_event` and tests::a_write_that_lost_its_race_emits_no_event, \
                  `some_long_field_name_here`, shared::tests::integration_test_name_in_a_table, \
                  `short_name`, `crate::api`, `Not_Snake_Case_At_All_Here`";
        assert_eq!(unresolved_references(ok, &d), Vec::<String>::new());
        let bad = unresolved_references(
            "//! `tests::wrangler_configs_match_binding_consts` and `not_a_real_definition_in_a_comment()`",
            &d,
        );
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("no `fn wrangler_configs_match_binding_consts`"));
        assert!(bad[1].contains("`not_a_real_definition_in_a_comment`"));
        // A field or a string literal is not a test, for `tests::`.
        assert_eq!(
            unresolved_references("tests::some_long_field_name_here", &d).len(),
            1
        );
    }

    #[test]
    fn a_statement_built_outside_store_is_found_and_comments_are_not() {
        let src = "// Stmt::new( in a comment\nlet s = Stmt::new(\"SELECT 1\", vec![]);\n";
        assert_eq!(statements_built_outside_store(src), vec![2]);
    }

    #[test]
    fn bindings_consts_are_read_from_source() {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("shared/src")).unwrap();
        std::fs::write(
            dir.join("shared/src/bindings.rs"),
            "/// Doc.\npub const A: &str = \"a\";\npub const B: &str = \"b b\";\n\
             pub const ALL: [&str; 2] = [\n    A,\n    B,\n];\n",
        )
        .unwrap();
        let b = Bindings::read(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(b.s("A").unwrap(), "a");
        assert_eq!(b.list("ALL").unwrap(), ["a", "b b"]);
        assert!(b.s("C").is_err());
    }

    #[test]
    fn jsonc_lines_point_at_the_key() {
        let text =
            "// c\n{\n  \"a\": [\n    { \"b\": 1, }\n  ],\n  \"env\": { \"p\": { \"b\": 2 } }\n}\n";
        let cfg = Config {
            name: "x.jsonc".into(),
            text: text.into(),
            json: serde_json::from_str(&strip_jsonc(text)).unwrap(),
        };
        assert_eq!(cfg.at("/a/0/b"), 1);
        assert_eq!(cfg.problem("/a/0/b", "x"), "wrangler/x.jsonc:4: x");
        assert_eq!(cfg.problem("/env/p/b", "x"), "wrangler/x.jsonc:6: x");
        assert_eq!(
            cfg.problem_at(&["\"env\"".into(), "2".into()], "x"),
            "wrangler/x.jsonc:6: x"
        );
    }
}
