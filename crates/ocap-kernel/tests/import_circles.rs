//! No import circles between the modules of any crate (issue 12).
//!
//! Each crate under `crates/` is read from its `src/`. A file is a module (`lib.rs`, `main.rs`:
//! the root; `foo/mod.rs`, `foo.rs`: `foo`; `foo/bar.rs`: `foo::bar`), and so is an inline
//! `mod x { … }`. A *reference* is a path from `crate::`, `super::` or `self::`, in code or in
//! a `use`/`pub use` (groups `use a::{b, c::d}` expanded; a child's bare name counts too). It
//! names the longest known module its path begins with; a name that module imports with
//! `use` (a re-export: `crate::KernelCore`) is followed to where it comes from (`core`).
//!
//! **The sibling rule.** A reference from module A to module B, neither an ancestor of the
//! other, is an edge between the two children of their longest common prefix P on the paths
//! to A and B: `core::router` using `core::crank::Outcome` is `router -> crank` inside `core`;
//! `kernel` using `facet::KernelFacet` is `kernel -> facet` at the root. A module and its
//! ancestors and descendants are one unit (a parent re-exports its children, a child uses its
//! parent's types): references between them are not edges.
//!
//! A strongly connected component of more than one node is a circle. The test lists each,
//! with every edge inside it and the lines that make it, so a reader sees what to move. The
//! scanner is by hand; it skips comments, strings and char literals.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;
type Binds = HashMap<(ModPath, String), ModPath>;
type At = (String, usize, String); // file, line, the line's text

/// A path as written (`["super", "server", "DaemonState"]`) in `module`, and where; `binds` is
/// the name a `use` leaf brings into scope.
struct Ref {
    module: ModPath,
    path: Vec<String>,
    at: At,
    binds: Option<String>,
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The tokens of `src` (identifiers, `::`, any other character alone), each with its line.
/// Comments (nested too), string literals (raw too) and char literals are skipped.
fn tokens(src: &str) -> Vec<(&str, usize)> {
    let c: Vec<(usize, char)> = src.char_indices().collect();
    let at = |j: usize| c.get(j).map_or('\0', |x| x.1);
    let word = |j: usize| at(j).is_alphanumeric() || at(j) == '_';
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < c.len() {
        // A raw string (`r"…"`, `r#"…"#`, `br"…"`) has its quote at `k + n`, after `n` hashes.
        let k = match (at(i), at(i + 1)) {
            ('r', _) => i + 1,
            ('b', 'r') => i + 2,
            _ => 0,
        };
        let n = (k..c.len()).take_while(|&j| k > 0 && at(j) == '#').count();
        let (end, code) = if at(i) == '/' && at(i + 1) == '/' {
            ((i..c.len()).find(|&j| at(j) == '\n').unwrap_or(c.len()), false)
        } else if at(i) == '/' && at(i + 1) == '*' {
            let (mut j, mut depth) = (i + 2, 1);
            while j < c.len() && depth > 0 {
                let (open, close) = ((at(j), at(j + 1)) == ('/', '*'), (at(j), at(j + 1)) == ('*', '/'));
                depth = depth + i32::from(open) - i32::from(close);
                j += if open || close { 2 } else { 1 };
            }
            (j, false)
        } else if k > 0 && at(k + n) == '"' {
            let close = (k + n + 1..c.len()).find(|&j| at(j) == '"' && (1..=n).all(|h| at(j + h) == '#'));
            (close.map_or(c.len(), |j| j + n + 1), false)
        } else if at(i) == '"' || (at(i) == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'')) {
            let mut j = i + 1; // a string or a char literal (not a lifetime)
            while j < c.len() && at(j) != at(i) {
                j += if at(j) == '\\' { 2 } else { 1 };
            }
            (j + 1, false)
        } else if word(i) {
            ((i..c.len()).find(|&j| !word(j)).unwrap_or(c.len()), true)
        } else {
            (i + if at(i) == ':' && at(i + 1) == ':' { 2 } else { 1 }, !at(i).is_whitespace())
        };
        let text = &src[c[i].0..c.get(end).map_or(src.len(), |x| x.0)];
        if code {
            out.push((text, line));
        }
        line += text.matches('\n').count();
        i = end;
    }
    out
}

/// Expands the use tree at `t[*i]` under `prefix` into `out`: (path, the name it binds, line).
fn use_tree(t: &[(&str, usize)], i: &mut usize, prefix: &[String], out: &mut Vec<(ModPath, Option<String>, usize)>) {
    let (mut path, mut line) = (prefix.to_vec(), t.get(*i).map_or(1, |x| x.1));
    let tok = |i: usize| t.get(i).map_or(";", |x| x.0);
    loop {
        match tok(*i) {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                while !matches!(tok(*i), "}" | ";") {
                    use_tree(t, i, &path, out);
                    *i += usize::from(!matches!(tok(*i), "}" | ";")); // the `,`
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                return out.push((path, None, line)); // a glob binds no name we follow
            }
            s if is_ident(s) && s != "as" => {
                (line, *i) = (t[*i].1, *i + 1);
                path.push(s.to_string());
            }
            _ => break,
        }
    }
    let mut name = path.iter().rev().find(|s| *s != "self").cloned();
    if tok(*i) == "as" {
        (name, *i) = (Some(tok(*i + 1).to_string()), *i + 2);
    }
    out.push((path, name, line));
}

/// The references of one file, whose module is `module`; inline modules are added to `known`.
fn scan(file: &str, module: &ModPath, src: &str, known: &mut HashSet<ModPath>, refs: &mut Vec<Ref>) {
    let t = tokens(src);
    let tok = |i: usize| t.get(i).map_or("", |x| x.0);
    let at = |line: usize| (file.to_string(), line, src.lines().nth(line - 1).unwrap_or("").trim().to_string());
    // The inline modules open here, with the brace depth each opened at.
    let (mut inline, mut depth, mut i) = (Vec::<(String, usize)>::new(), 0, 0);
    let here = |inline: &[(String, usize)]| [module.clone(), inline.iter().map(|m| m.0.clone()).collect()].concat();
    while i < t.len() {
        match tok(i) {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                inline.retain(|m| m.1 < depth);
            }
            "mod" if is_ident(tok(i + 1)) && matches!(tok(i + 2), ";" | "{") => {
                known.insert([here(&inline), vec![tok(i + 1).to_string()]].concat());
                if tok(i + 2) == "{" {
                    inline.push((tok(i + 1).to_string(), depth));
                }
            }
            "use" => {
                let mut leaves = Vec::new();
                i += 1;
                use_tree(&t, &mut i, &[], &mut leaves);
                let m = here(&inline);
                for (path, binds, line) in leaves {
                    refs.push(Ref { module: m.clone(), path, at: at(line), binds });
                }
                continue;
            }
            // A path in code; not the `crate` of `pub(in crate::x)`.
            "crate" | "super" | "self" if tok(i + 1) == "::" && !(i > 0 && tok(i - 1) == "in") => {
                let (line, mut path) = (t[i].1, vec![tok(i).to_string()]);
                while tok(i + 1) == "::" && is_ident(tok(i + 2)) {
                    path.push(tok(i + 2).to_string());
                    i += 2;
                }
                refs.push(Ref { module: here(&inline), path, at: at(line), binds: None });
            }
            _ => {}
        }
        i += 1;
    }
}

/// A path as written in `m`, made absolute; `None` for a path into another crate.
fn absolute(m: &[String], path: &[String], known: &HashSet<ModPath>) -> Option<ModPath> {
    let first = path.first()?;
    let ours = matches!(first.as_str(), "crate" | "self" | "super")
        || known.contains(&[m, std::slice::from_ref(first)].concat());
    ours.then(|| {
        path.iter().fold(m.to_vec(), |mut cur, s| {
            match s.as_str() {
                "crate" => cur.clear(),
                "self" => {}
                "super" => drop(cur.pop()),
                s => cur.push(s.to_string()),
            }
            cur
        })
    })
}

/// The module an absolute path names: its longest known prefix, where a name that module
/// binds with `use` (a re-export) is followed to where it comes from, a few hops at most.
fn target(abs: &[String], known: &HashSet<ModPath>, binds: &Binds, hops: u8) -> ModPath {
    let n = (0..=abs.len()).rev().find(|&n| known.contains(&abs[..n])).unwrap_or(0);
    match abs.get(n).and_then(|name| binds.get(&(abs[..n].to_vec(), name.clone()))) {
        Some(to) if hops < 8 => target(&[to, &abs[n + 1..]].concat(), known, binds, hops + 1),
        _ => abs[..n].to_vec(),
    }
}

/// `src/foo/bar.rs` → `foo::bar`, `src/foo/mod.rs` → `foo`, `src/lib.rs` → the root.
fn module_of(file: &str) -> ModPath {
    let rel = file.trim_start_matches("src/").trim_end_matches(".rs").trim_end_matches("/mod");
    rel.split('/').filter(|_| !matches!(rel, "lib" | "main")).map(String::from).collect()
}

/// The circles of the crate `name` made of `sources` (`src/…` path, text), for people.
fn circles(name: &str, sources: &[(String, String)]) -> Vec<String> {
    let mut known: HashSet<ModPath> = sources.iter().map(|s| module_of(&s.0)).collect();
    let mut refs = Vec::new();
    for (file, text) in sources {
        scan(file, &module_of(file), text, &mut known, &mut refs);
    }
    let bind = |r: &Ref| Some(((r.module.clone(), r.binds.clone()?), absolute(&r.module, &r.path, &known)?));
    let binds: Binds = refs.iter().filter_map(bind).collect();
    // (from, to) → the references that make the edge.
    let mut edges: BTreeMap<(String, String), BTreeSet<At>> = BTreeMap::new();
    for r in &refs {
        let Some(abs) = absolute(&r.module, &r.path, &known) else { continue };
        let (a, b) = (&r.module, target(&abs, &known, &binds, 0));
        let p = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        if p == a.len() || p == b.len() {
            continue; // one is the other's ancestor
        }
        edges.entry((a[..=p].join("::"), b[..=p].join("::"))).or_default().insert(r.at.clone());
    }
    let mut reaches: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, _) in edges.keys() {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.as_str()]);
        while let Some(n) = todo.pop() {
            todo.extend(edges.keys().filter(|(a, b)| a == n && seen.insert(b.as_str())).map(|(_, b)| b.as_str()));
        }
        reaches.insert(from, seen);
    }
    // A strongly connected component: the nodes that reach `n` and that `n` reaches.
    let components: BTreeSet<BTreeSet<&str>> = reaches
        .iter()
        .map(|(&n, r)| r.iter().copied().filter(|m| reaches.get(m).is_some_and(|rm| rm.contains(n))).collect())
        .filter(|scc: &BTreeSet<&str>| scc.len() > 1)
        .collect();
    let describe = |scc: &BTreeSet<&str>| {
        let mut text = format!("{name}: circle among {}:", scc.iter().copied().collect::<Vec<_>>().join(", "));
        for ((a, b), lines) in edges.iter().filter(|((a, b), _)| scc.contains(a.as_str()) && scc.contains(b.as_str())) {
            text.push_str(&format!("\n  {a} -> {b}"));
            lines.iter().for_each(|(file, line, code)| text.push_str(&format!("\n    {file}:{line}: {code}")));
        }
        text
    };
    components.iter().map(describe).collect()
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    entries.sort();
    let rs = |p: &PathBuf| p.extension().is_some_and(|e| e == "rs");
    entries
        .into_iter()
        .flat_map(|p| if p.is_dir() { rs_files(&p) } else { Vec::from_iter(Some(p).filter(rs)) })
        .collect()
}

#[test]
fn no_import_circles_in_the_crates() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crates directory");
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(crates).expect("crates/").flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.join("src").is_dir()) {
        let read = |f: &PathBuf| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        let rel = |f: &PathBuf| f.strip_prefix(&dir).unwrap_or(f).display().to_string();
        let sources: Vec<(String, String)> = rs_files(&dir.join("src")).iter().map(|f| (rel(f), read(f))).collect();
        found.extend(circles(&dir.file_name().unwrap_or_default().to_string_lossy(), &sources));
    }
    let advice = "break each by moving what both sides need down into a module both may use";
    assert!(found.is_empty(), "import circles ({advice}):\n\n{}\n", found.join("\n\n"));
}

/// Grouped uses, comments, strings, char literals, lifetimes, an inline module, a re-export.
#[test]
fn the_checker_reads_what_it_must_and_skips_the_rest() {
    let files = [
        ("src/lib.rs", "mod a;\nmod b;\nmod c;\npub use a::Thing;\n"),
        ("src/a/mod.rs", "// use crate::c;\nuse crate::b::{self, x::{Y as Z, *}};\n"),
        ("src/a/inner.rs", "fn f<'a>() { ('\"', \"crate::c\", '{'); }\nmod t { use super::super::super::c::W; }\n"),
        ("src/b/mod.rs", "pub mod x;\n"),
        ("src/b/x.rs", "fn g() { r#\"crate::c::g\"#; crate::Thing::new(); }\n"),
        ("src/c.rs", "/* crate::a::h /* nested */ */ use crate::b::x;\n"),
    ];
    let sources: Vec<(String, String)> = files.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
    let expected = "demo: circle among a, b, c:
  a -> b
    src/a/mod.rs:2: use crate::b::{self, x::{Y as Z, *}};
  a -> c
    src/a/inner.rs:2: mod t { use super::super::super::c::W; }
  b -> a
    src/b/x.rs:1: fn g() { r#\"crate::c::g\"#; crate::Thing::new(); }
  c -> b
    src/c.rs:1: /* crate::a::h /* nested */ */ use crate::b::x;";
    assert_eq!(circles("demo", &sources), [expected]);
}
