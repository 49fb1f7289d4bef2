//! A Rust-native bundler for vat sources, producing the JS kernel's bundle
//! format (spec vat-side §4.2): JSON `{moduleFormat: "iife", code, exports,
//! external: []}` where `code` declares `var __vatExports__`.
//!
//! It does what `crates/ocap-vat/js/build.mjs vat` does with esbuild, but with
//! `swc_bundler` and without node:
//! * every import is inlined; bare specifiers are resolved Node-style
//!   ([`resolve`]) from the `node_modules` directories given, after
//!   exact-match aliases (such as `@metamask/kernel-utils/exo`);
//! * `import('literal')` becomes `Promise.resolve({})`; a computed
//!   `import(x)` is an error (SES would reject the bundle text anyway);
//! * `process.env.NODE_ENV` becomes `"production"`;
//! * no comments are emitted (SES rejects `import(` even in comments).
//!
//! Only ES modules are supported: a CommonJS module is reported as
//! [`BundleError::CommonJs`].
//!
//! Every file is read through a [`FileSystem`]: [`bundle_vat`] uses the real disk;
//! [`bundle_vat_with_fs`] takes another, such as an [`EmbeddedFs`] carrying the packages a
//! binary ships with (see `ocap_vat::bundle_vat`).

mod fs;
mod resolve;
mod transform;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use swc_bundler::{Bundler, Config, Hook, Load, ModuleData, ModuleRecord, ModuleType};
use swc_common::{sync::Lrc, FileName, Globals, SourceMap, Span, Spanned, GLOBALS};
use swc_ecma_ast::{
    Decl, EsVersion, Expr, KeyValueProp, Module, ModuleItem, Pat, Prop, PropName, PropOrSpread, Stmt, VarDecl,
    VarDeclKind, VarDeclarator,
};
use swc_ecma_codegen::{text_writer::JsWriter, Emitter};
use swc_ecma_parser::{parse_file_as_module, EsSyntax, Syntax};
use swc_ecma_transforms_base::helpers::Helpers;
use swc_ecma_visit::VisitMutWith;

pub use fs::{read_regular_file, ArchiveError, Disk, EmbeddedFs, FileSystem, MAX_SOURCE_FILE_BYTES};
pub use resolve::Resolver;

/// The global the bundle's code assigns the entry module's exports to.
pub const EXPORTS_GLOBAL: &str = "__vatExports__";

/// Why a vat source could not be bundled. Every variant names the file (and,
/// for resolution failures, the import) at fault.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("vat source not found: {}", path.display())]
    EntryNotFound { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("syntax error in {}:{line}:{column}: {message}", path.display())]
    Parse { path: PathBuf, line: usize, column: usize, message: String },
    #[error("cannot resolve import '{specifier}' from {}: {reason}", importer.display())]
    Unresolved { importer: PathBuf, specifier: String, reason: String },
    #[error("invalid package.json {}: {reason}", path.display())]
    PackageJson { path: PathBuf, reason: String },
    #[error("{} is a CommonJS module; only ES modules can be bundled", path.display())]
    CommonJs { path: PathBuf },
    #[error("{} has a computed dynamic import `import(...)`, which a vat bundle cannot contain", path.display())]
    DynamicImport { path: PathBuf },
    #[error("{} uses `import.meta`, which a vat bundle cannot contain", path.display())]
    ImportMeta { path: PathBuf },
    #[error("bundling {} failed: {reason}", entry.display())]
    Bundler { entry: PathBuf, reason: String },
}

/// Bundle the vat source `entry` into the JS kernel's bundle format and
/// return the bundle's JSON text.
///
/// Bare imports are resolved from the `node_modules` directories above the
/// importing file first, then from `node_modules` in order. `aliases` map an
/// exact import specifier to a file, and win over everything else.
pub fn bundle_vat(
    entry: &Path,
    node_modules: &[PathBuf],
    aliases: &[(String, PathBuf)],
) -> Result<String, BundleError> {
    bundle_vat_with_fs(Arc::new(Disk), entry, node_modules, aliases)
}

/// Like [`bundle_vat`], but every file (the entry, its imports, `package.json`s) is looked
/// up and read through `fs`.
pub fn bundle_vat_with_fs(
    fs: Arc<dyn FileSystem>,
    entry: &Path,
    node_modules: &[PathBuf],
    aliases: &[(String, PathBuf)],
) -> Result<String, BundleError> {
    let (code, exports) = bundle_vat_code_with_fs(fs, entry, node_modules, aliases)?;
    let bundle = serde_json::json!({
        "moduleFormat": "iife",
        "code": code,
        "exports": exports,
        "external": [],
    });
    Ok(bundle.to_string())
}

/// Like [`bundle_vat`], but return the bundle's `code` and `exports`.
pub fn bundle_vat_code(
    entry: &Path,
    node_modules: &[PathBuf],
    aliases: &[(String, PathBuf)],
) -> Result<(String, Vec<String>), BundleError> {
    bundle_vat_code_with_fs(Arc::new(Disk), entry, node_modules, aliases)
}

/// Like [`bundle_vat_code`], reading through `fs`.
pub fn bundle_vat_code_with_fs(
    fs: Arc<dyn FileSystem>,
    entry: &Path,
    node_modules: &[PathBuf],
    aliases: &[(String, PathBuf)],
) -> Result<(String, Vec<String>), BundleError> {
    if !fs.is_file(entry) {
        return Err(BundleError::EntryNotFound { path: entry.to_path_buf() });
    }
    let entry = fs.canonical(entry);
    let cm: Lrc<SourceMap> = Default::default();
    let globals = Globals::new();
    let loader = Loader { cm: cm.clone(), fs: fs.clone() };
    let resolver = Resolver::with_fs(fs, node_modules.to_vec(), aliases.to_vec());
    let config = Config { module: ModuleType::Iife, ..Default::default() };
    let mut bundler = Bundler::new(&globals, cm.clone(), loader, resolver, config, Box::new(NoImportMeta));

    let mut entries = HashMap::new();
    entries.insert("vat".to_string(), FileName::Real(entry.clone()));
    let bundles = GLOBALS.set(&globals, || bundler.bundle(entries)).map_err(|err| to_bundle_error(&entry, err))?;
    let bundle = match <[_; 1]>::try_from(bundles) {
        Ok([bundle]) => bundle,
        Err(bundles) => {
            return Err(BundleError::Bundler {
                entry,
                reason: format!("expected one output chunk, got {}", bundles.len()),
            })
        }
    };
    let (module, exports) = assign_to_exports_global(bundle.module)
        .map_err(|reason| BundleError::Bundler { entry: entry.clone(), reason })?;
    let code = emit(cm, &module).map_err(|reason| BundleError::Bundler { entry, reason })?;
    Ok((code, exports))
}

/// Recover our own error from the bundler's `anyhow` chain.
fn to_bundle_error(entry: &Path, err: anyhow::Error) -> BundleError {
    for cause in err.chain() {
        if let Some(ours) = cause.downcast_ref::<BundleError>() {
            return clone_error(ours);
        }
    }
    BundleError::Bundler { entry: entry.to_path_buf(), reason: format!("{err:#}") }
}

fn clone_error(err: &BundleError) -> BundleError {
    use BundleError::*;
    match err {
        EntryNotFound { path } => EntryNotFound { path: path.clone() },
        Read { path, source } => {
            Read { path: path.clone(), source: std::io::Error::new(source.kind(), source.to_string()) }
        }
        Parse { path, line, column, message } => {
            Parse { path: path.clone(), line: *line, column: *column, message: message.clone() }
        }
        Unresolved { importer, specifier, reason } => {
            Unresolved { importer: importer.clone(), specifier: specifier.clone(), reason: reason.clone() }
        }
        PackageJson { path, reason } => PackageJson { path: path.clone(), reason: reason.clone() },
        CommonJs { path } => CommonJs { path: path.clone() },
        DynamicImport { path } => DynamicImport { path: path.clone() },
        ImportMeta { path } => ImportMeta { path: path.clone() },
        Bundler { entry, reason } => Bundler { entry: entry.clone(), reason: reason.clone() },
    }
}

/// `swc_bundler`'s IIFE output is one statement, `(function(){ …; return
/// {a, b: c}; })();`. Make it `var __vatExports__ = (function(){…})();` and
/// collect the returned object's keys, which are the entry's exports.
fn assign_to_exports_global(mut module: Module) -> Result<(Module, Vec<String>), String> {
    let [ModuleItem::Stmt(Stmt::Expr(stmt))] = module.body.as_mut_slice() else {
        return Err("unexpected IIFE output shape".into());
    };
    let expr = std::mem::replace(&mut stmt.expr, Box::new(Expr::Invalid(Default::default())));
    let exports = iife_exports(&expr).ok_or("cannot find the IIFE's returned exports")?;
    let decl = VarDecl {
        kind: VarDeclKind::Var,
        decls: vec![VarDeclarator {
            span: Default::default(),
            name: Pat::Ident(swc_ecma_ast::Ident::new_no_ctxt(EXPORTS_GLOBAL.into(), Default::default()).into()),
            init: Some(expr),
            definite: false,
        }],
        ..Default::default()
    };
    module.body = vec![ModuleItem::Stmt(Stmt::Decl(Decl::Var(Box::new(decl))))];
    Ok((module, exports))
}

fn iife_exports(expr: &Expr) -> Option<Vec<String>> {
    let call = expr.as_call()?;
    let callee = call.callee.as_expr()?;
    let mut callee = &**callee;
    while let Expr::Paren(p) = callee {
        callee = &p.expr;
    }
    let body = callee.as_fn_expr()?.function.body.as_ref()?;
    let ret = body.stmts.last()?.as_return_stmt()?.arg.as_ref()?.as_object()?;
    let mut names = Vec::new();
    for prop in &ret.props {
        let PropOrSpread::Prop(prop) = prop else { return None };
        match &**prop {
            Prop::Shorthand(ident) => names.push(ident.sym.to_string()),
            Prop::KeyValue(KeyValueProp { key, .. }) => match key {
                PropName::Ident(i) => names.push(i.sym.to_string()),
                PropName::Str(s) => names.push(s.value.to_string_lossy().into_owned()),
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(names)
}

fn emit(cm: Lrc<SourceMap>, module: &Module) -> Result<String, String> {
    let mut buf = Vec::new();
    {
        let mut emitter = Emitter {
            cfg: swc_ecma_codegen::Config::default().with_target(EsVersion::Es2022),
            cm: cm.clone(),
            comments: None,
            wr: JsWriter::new(cm, "\n", &mut buf, None),
        };
        emitter.emit_module(module).map_err(|e| format!("code generation: {e}"))?;
    }
    String::from_utf8(buf).map_err(|e| format!("code generation produced invalid UTF-8: {e}"))
}

struct NoImportMeta;

impl Hook for NoImportMeta {
    fn get_import_meta_props(&self, _: Span, record: &ModuleRecord) -> Result<Vec<KeyValueProp>, anyhow::Error> {
        let path = match &record.file_name {
            FileName::Real(p) => p.clone(),
            other => PathBuf::from(other.to_string()),
        };
        Err(BundleError::ImportMeta { path }.into())
    }
}

/// Reads, parses and pre-transforms one module.
struct Loader {
    cm: Lrc<SourceMap>,
    fs: Arc<dyn FileSystem>,
}

impl Loader {
    /// TypeScript to JavaScript: parse as TS, strip the types, print. The printed JS is then
    /// loaded like any other module, so the bundler sees fresh syntax contexts.
    fn strip_types(&self, file: &FileName, path: &Path, source: String) -> Result<String, BundleError> {
        use swc_ecma_ast::{Pass, Program};
        let fm = self.cm.new_source_file(Lrc::new(file.clone()), source);
        let mut recovered = Vec::new();
        let syntax = Syntax::Typescript(swc_ecma_parser::TsSyntax::default());
        let parse_error = |e: swc_ecma_parser::error::Error| {
            let loc = self.cm.lookup_char_pos(e.span().lo);
            BundleError::Parse {
                path: path.to_path_buf(),
                line: loc.line,
                column: loc.col_display + 1,
                message: e.kind().msg().into_owned(),
            }
        };
        let module =
            parse_file_as_module(&fm, syntax, EsVersion::latest(), None, &mut recovered).map_err(parse_error)?;
        if let Some(e) = recovered.into_iter().next() {
            return Err(parse_error(e));
        }
        let unresolved = swc_common::Mark::new();
        let top_level = swc_common::Mark::new();
        let mut program = Program::Module(module);
        swc_ecma_transforms_base::resolver(unresolved, top_level, true).process(&mut program);
        swc_ecma_transforms_typescript::strip(unresolved, top_level).process(&mut program);
        let Program::Module(module) = program else {
            return Err(BundleError::Bundler {
                entry: path.to_path_buf(),
                reason: "TypeScript strip lost the module".into(),
            });
        };
        emit(self.cm.clone(), &module).map_err(|reason| BundleError::Bundler { entry: path.to_path_buf(), reason })
    }
}

impl Load for Loader {
    fn load(&self, file: &FileName) -> Result<ModuleData, anyhow::Error> {
        let FileName::Real(path) = file else {
            anyhow::bail!("cannot load non-file module {file}");
        };
        let mut source =
            self.fs.read_to_string(path).map_err(|source| BundleError::Read { path: path.clone(), source })?;
        if path.extension().is_some_and(|e| e == "ts" || e == "mts") {
            source = self.strip_types(file, path, source)?;
        }
        let fm = self.cm.new_source_file(Lrc::new(file.clone()), source);
        let mut recovered = Vec::new();
        let parse_error = |e: swc_ecma_parser::error::Error| {
            let loc = self.cm.lookup_char_pos(e.span().lo);
            BundleError::Parse {
                path: path.clone(),
                line: loc.line,
                column: loc.col_display + 1,
                message: e.kind().msg().into_owned(),
            }
        };
        let mut module =
            parse_file_as_module(&fm, Syntax::Es(EsSyntax::default()), EsVersion::latest(), None, &mut recovered)
                .map_err(parse_error)?;
        if let Some(e) = recovered.into_iter().next() {
            return Err(parse_error(e).into());
        }
        let has_module_syntax = module.body.iter().any(|item| matches!(item, ModuleItem::ModuleDecl(_)));
        if path.extension().is_some_and(|e| e == "cjs")
            || (!has_module_syntax && transform::looks_like_commonjs(&module))
        {
            return Err(BundleError::CommonJs { path: path.clone() }.into());
        }
        let mut pass = transform::VatTransforms::default();
        module.visit_mut_with(&mut pass);
        if pass.computed_dynamic_import {
            return Err(BundleError::DynamicImport { path: path.clone() }.into());
        }
        Ok(ModuleData { fm, module, helpers: Helpers::new(false) })
    }
}
