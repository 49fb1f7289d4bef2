//! Node-style module resolution, ES-module flavoured: aliases, relative
//! files, and bare specifiers through `package.json` `exports` (conditions
//! `import`, `node`, `default`), then `module`, `main`, `index.js`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;
use swc_common::FileName;
use swc_ecma_loader::resolve::{Resolution, Resolve};

use crate::fs::{Disk, FileSystem};
use crate::BundleError;

/// Conditions matched in `package.json` `exports`, whatever their order
/// there (the order in the file decides, as in Node).
pub const CONDITIONS: &[&str] = &["import", "node", "default", "module"];

/// Extensions tried for an extensionless relative import.
const EXTENSIONS: &[&str] = &["js", "mjs", "ts", "mts"];

pub struct Resolver {
    node_modules: Vec<PathBuf>,
    aliases: Vec<(String, PathBuf)>,
    fs: Arc<dyn FileSystem>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Exports {
    Target(String),
    Alternatives(Vec<Exports>),
    Map(IndexMap<String, Exports>),
    Null,
}

#[derive(Deserialize)]
struct PackageJson {
    #[serde(default)]
    exports: Option<Exports>,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    main: Option<String>,
}

impl Resolver {
    /// A resolver over the real disk.
    pub fn new(node_modules: Vec<PathBuf>, aliases: Vec<(String, PathBuf)>) -> Resolver {
        Resolver::with_fs(Arc::new(Disk), node_modules, aliases)
    }

    /// A resolver that looks at files only through `fs` (for example an [`crate::EmbeddedFs`],
    /// whose virtual paths may appear in `node_modules` and `aliases`).
    pub fn with_fs(fs: Arc<dyn FileSystem>, node_modules: Vec<PathBuf>, aliases: Vec<(String, PathBuf)>) -> Resolver {
        Resolver { node_modules, aliases, fs }
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        self.fs.canonical(path)
    }

    /// Resolve `specifier` imported by the file `importer`.
    pub fn resolve_path(&self, importer: &Path, specifier: &str) -> Result<PathBuf, BundleError> {
        let unresolved = |reason: String| BundleError::Unresolved {
            importer: importer.to_path_buf(),
            specifier: specifier.to_string(),
            reason,
        };
        if let Some((_, target)) = self.aliases.iter().find(|(name, _)| name == specifier) {
            return if self.fs.is_file(target) {
                Ok(self.canonical(target))
            } else {
                Err(unresolved(format!("alias target {} not found", target.display())))
            };
        }
        let base = importer.parent().unwrap_or(Path::new("/"));
        if specifier.starts_with("./") || specifier.starts_with("../") || specifier == "." || specifier == ".." {
            return self.file_or_directory(&base.join(specifier))?.ok_or_else(|| unresolved("no such file".into()));
        }
        if specifier.starts_with('/') {
            return self.file_or_directory(Path::new(specifier))?.ok_or_else(|| unresolved("no such file".into()));
        }
        if specifier.starts_with("node:") || specifier.contains(':') {
            return Err(unresolved("not a package or file (builtin or URL imports cannot be bundled)".into()));
        }
        let (package, subpath) = split_package(specifier).ok_or_else(|| unresolved("invalid package name".into()))?;
        // Node looks in every node_modules above the importer, then NODE_PATH.
        let mut dirs: Vec<PathBuf> = base.ancestors().map(|d| d.join("node_modules")).collect();
        dirs.extend(self.node_modules.iter().cloned());
        for dir in dirs {
            let package_dir = dir.join(package);
            if !self.fs.is_dir(&package_dir) {
                continue;
            }
            return self
                .in_package(&package_dir, &subpath)?
                .ok_or_else(|| unresolved(format!("package {} does not provide '{subpath}'", package_dir.display())));
        }
        Err(unresolved(format!(
            "package '{package}' not found in any node_modules (searched above the importer and {})",
            self.node_modules.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )))
    }

    /// `subpath` is `.` or `./x/y`.
    fn in_package(&self, package_dir: &Path, subpath: &str) -> Result<Option<PathBuf>, BundleError> {
        let manifest_path = package_dir.join("package.json");
        let manifest = if self.fs.is_file(&manifest_path) {
            let text = self
                .fs
                .read_to_string(&manifest_path)
                .map_err(|source| BundleError::Read { path: manifest_path.clone(), source })?;
            let manifest: PackageJson = serde_json::from_str(&text)
                .map_err(|e| BundleError::PackageJson { path: manifest_path.clone(), reason: e.to_string() })?;
            Some(manifest)
        } else {
            None
        };
        if let Some(exports) = manifest.as_ref().and_then(|m| m.exports.as_ref()) {
            let Some(target) = resolve_exports(exports, subpath) else {
                return Ok(None);
            };
            let path = package_dir.join(target.trim_start_matches("./"));
            return Ok(self.fs.is_file(&path).then(|| self.canonical(&path)));
        }
        if subpath == "." {
            if let Some(manifest) = &manifest {
                for field in [&manifest.module, &manifest.main].into_iter().flatten() {
                    if let Some(found) = self.file_or_directory(&package_dir.join(field))? {
                        return Ok(Some(found));
                    }
                }
            }
            return self.file_or_directory(&package_dir.join("index"));
        }
        self.file_or_directory(&package_dir.join(subpath.trim_start_matches("./")))
    }

    fn file_or_directory(&self, path: &Path) -> Result<Option<PathBuf>, BundleError> {
        if self.fs.is_file(path) {
            return Ok(Some(self.canonical(path)));
        }
        for ext in EXTENSIONS {
            let mut with_ext = path.as_os_str().to_owned();
            with_ext.push(".");
            with_ext.push(ext);
            let with_ext = PathBuf::from(with_ext);
            if self.fs.is_file(&with_ext) {
                return Ok(Some(self.canonical(&with_ext)));
            }
        }
        if self.fs.is_dir(path) {
            let manifest_path = path.join("package.json");
            if self.fs.is_file(&manifest_path) {
                let text = self
                    .fs
                    .read_to_string(&manifest_path)
                    .map_err(|source| BundleError::Read { path: manifest_path.clone(), source })?;
                let manifest: PackageJson = serde_json::from_str(&text)
                    .map_err(|e| BundleError::PackageJson { path: manifest_path.clone(), reason: e.to_string() })?;
                for field in [&manifest.module, &manifest.main].into_iter().flatten() {
                    let candidate = path.join(field);
                    if self.fs.is_file(&candidate) {
                        return Ok(Some(self.canonical(&candidate)));
                    }
                }
            }
            for ext in EXTENSIONS {
                let index = path.join(format!("index.{ext}"));
                if self.fs.is_file(&index) {
                    return Ok(Some(self.canonical(&index)));
                }
            }
        }
        Ok(None)
    }
}

/// `@scope/name/sub/path` → (`@scope/name`, `./sub/path`); `name` → (`name`, `.`).
fn split_package(specifier: &str) -> Option<(&str, String)> {
    let mut end = specifier.find('/').unwrap_or(specifier.len());
    if specifier.starts_with('@') {
        if end == specifier.len() {
            return None;
        }
        end = specifier[end + 1..].find('/').map_or(specifier.len(), |i| end + 1 + i);
    }
    let package = &specifier[..end];
    if package.is_empty() || package.ends_with('/') {
        return None;
    }
    let rest = &specifier[end..];
    let subpath = if rest.is_empty() { ".".to_string() } else { format!(".{rest}") };
    Some((package, subpath))
}

/// Resolve `subpath` (`.` or `./x`) through an `exports` field.
fn resolve_exports(exports: &Exports, subpath: &str) -> Option<String> {
    let map = match exports {
        Exports::Map(map) if map.keys().any(|k| k.starts_with('.')) => map,
        // Sugar: the whole field is the "." entry.
        other => return if subpath == "." { resolve_target(other, "") } else { None },
    };
    if let Some(target) = map.get(subpath) {
        return resolve_target(target, "");
    }
    // Patterns `./x/*` (and `./x/*.js`): the longest matching prefix wins.
    let mut best: Option<(&str, &str, &Exports)> = None;
    for (key, target) in map {
        if let Some(star) = key.find('*') {
            let (prefix, suffix) = (&key[..star], &key[star + 1..]);
            if subpath.len() >= prefix.len() + suffix.len()
                && subpath.starts_with(prefix)
                && subpath.ends_with(suffix)
                && best.is_none_or(|(p, _, _)| prefix.len() > p.len())
            {
                best = Some((prefix, suffix, target));
            }
        } else if key.ends_with('/')
            && subpath.starts_with(key.as_str())
            && best.is_none_or(|(p, _, _)| key.len() > p.len())
        {
            // Legacy folder mapping `./x/`.
            best = Some((key.as_str(), "\0folder", target));
        }
    }
    let (prefix, suffix, target) = best?;
    if suffix == "\0folder" {
        let rest = &subpath[prefix.len()..];
        return resolve_target(target, "").map(|t| format!("{t}{rest}"));
    }
    let matched = &subpath[prefix.len()..subpath.len() - suffix.len()];
    resolve_target(target, matched)
}

fn resolve_target(target: &Exports, star: &str) -> Option<String> {
    match target {
        Exports::Target(s) => Some(s.replace('*', star)),
        Exports::Alternatives(list) => list.iter().find_map(|t| resolve_target(t, star)),
        Exports::Map(conditions) => conditions
            .iter()
            .filter(|(condition, _)| CONDITIONS.contains(&condition.as_str()))
            .find_map(|(_, t)| resolve_target(t, star)),
        Exports::Null => None,
    }
}

impl Resolve for Resolver {
    fn resolve(&self, base: &FileName, module_specifier: &str) -> Result<Resolution, anyhow::Error> {
        let importer = match base {
            FileName::Real(p) => p.clone(),
            other => PathBuf::from(other.to_string()),
        };
        let path = self.resolve_path(&importer, module_specifier)?;
        Ok(Resolution { filename: FileName::Real(path), slug: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_split_from_subpaths() {
        assert_eq!(split_package("@endo/errors"), Some(("@endo/errors", ".".into())));
        assert_eq!(split_package("@endo/patterns/x/y.js"), Some(("@endo/patterns", "./x/y.js".into())));
        assert_eq!(split_package("ses"), Some(("ses", ".".into())));
        assert_eq!(split_package("ses/tools.js"), Some(("ses", "./tools.js".into())));
        assert_eq!(split_package("@endo"), None);
    }

    #[test]
    fn exports_conditions_and_patterns() {
        let exports: Exports = serde_json::from_str(
            r#"{
                ".": {"types": "./t.d.ts", "require": "./x.cjs", "import": "./x.js"},
                "./sub": [{"browser": "./b.js"}, "./s.js"],
                "./lib/*": "./src/*.js",
                "./lib/private/*": null,
                "./package.json": "./package.json"
            }"#,
        )
        .unwrap();
        assert_eq!(resolve_exports(&exports, ".").as_deref(), Some("./x.js"));
        assert_eq!(resolve_exports(&exports, "./sub").as_deref(), Some("./s.js"));
        assert_eq!(resolve_exports(&exports, "./lib/a/b").as_deref(), Some("./src/a/b.js"));
        assert_eq!(resolve_exports(&exports, "./lib/private/z"), None);
        assert_eq!(resolve_exports(&exports, "./nope"), None);
        let sugar: Exports = serde_json::from_str(r#"{"default": "./d.js", "import": "./i.js"}"#).unwrap();
        assert_eq!(resolve_exports(&sugar, ".").as_deref(), Some("./d.js"));
        let plain: Exports = serde_json::from_str(r#""./main.js""#).unwrap();
        assert_eq!(resolve_exports(&plain, ".").as_deref(), Some("./main.js"));
    }
}
