//! Builds the JS prelude (SES + liveslots + our supervisor) that every vat
//! runtime evaluates, and leaves it in OUT_DIR for `include_str!`.
//!
//! Steps:
//! 1. copy `js/package.json` and `js/package-lock.json` into `$OUT_DIR/js`
//!    and run `npm ci` there, unless the lock file's hash matches the stamp
//!    left by the last successful install (so a rebuild costs nothing).
//!    After the install, the patches in `js/patches/` are applied with
//!    `patch-package` (pinned in the lock file like everything else; the
//!    install runs with `--ignore-scripts`, so we run it ourselves). The
//!    patches are part of the stamp, so editing one reinstalls from scratch;
//! 2. run `node js/build.mjs prelude` (esbuild from that node_modules) to
//!    write `$OUT_DIR/prelude.js`, and `node js/build.mjs url` for
//!    `$OUT_DIR/url-module.js` (the `URL` endowment, loaded only by vats that
//!    ask for it);
//! 3. pack what vat sources may import into `$OUT_DIR/vat-packages.tar.gz`
//!    ([`pack_vat_packages`]), which `src/bundle.rs` embeds so that the binary bundles
//!    `sourceSpec` vats without this build directory.
//!
//! Nothing third-party is committed: the lock file pins every package, and
//! a fix to one is a small patch file (see `js/patches/README.md`).
//! `OCAP_VAT_NPM` / `OCAP_VAT_NODE` override the `npm` / `node` binaries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if let Err(message) = run() {
        // A panic message is what cargo shows for a failed build script.
        panic!("\n\nocap-vat build failed: {message}\n");
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let js_dir = manifest_dir.join("js");

    for path in ["package.json", "package-lock.json", "build.mjs", "src", "patches"] {
        println!("cargo:rerun-if-changed={}", js_dir.join(path).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OCAP_VAT_NPM");
    println!("cargo:rerun-if-env-changed=OCAP_VAT_NODE");

    let npm = env::var("OCAP_VAT_NPM").unwrap_or_else(|_| "npm".to_string());
    let node = env::var("OCAP_VAT_NODE").unwrap_or_else(|_| "node".to_string());
    check_tool(&node, "Node.js (`node`)", "OCAP_VAT_NODE")?;
    check_tool(&npm, "npm", "OCAP_VAT_NPM")?;

    let install_dir = out_dir.join("js");
    fs::create_dir_all(&install_dir).map_err(|e| format!("creating {}: {e}", install_dir.display()))?;
    let package_json = read(&js_dir.join("package.json"))?;
    let lock = read(&js_dir.join("package-lock.json"))?;
    let patches = read_patches(&js_dir.join("patches"))?;
    let mut stamped: Vec<&[u8]> = vec![package_json.as_slice(), lock.as_slice()];
    for (name, text) in &patches {
        stamped.push(name.as_bytes());
        stamped.push(text.as_slice());
    }
    let stamp = format!("{:016x}", fnv1a64(&stamped));
    let stamp_path = install_dir.join(".ocap-lock-stamp");
    let node_modules = install_dir.join("node_modules");
    let up_to_date =
        fs::read_to_string(&stamp_path).map(|s| s == stamp).unwrap_or(false) && node_modules.join("esbuild").is_dir();
    if !up_to_date {
        write(&install_dir.join("package.json"), &package_json)?;
        write(&install_dir.join("package-lock.json"), &lock)?;
        let _ = fs::remove_file(&stamp_path);
        let status = Command::new(&npm)
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
            .current_dir(&install_dir)
            .status()
            .map_err(|e| format!("running `{npm} ci`: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`{npm} ci` in {} failed ({status}); the npm registry must be reachable for a first build",
                install_dir.display()
            ));
        }
        apply_patches(&node, &install_dir, &patches)?;
        write(&stamp_path, stamp.as_bytes())?;
    }

    esbuild(&node, &js_dir, &node_modules, "prelude", &out_dir.join("prelude.js"))?;
    esbuild(&node, &js_dir, &node_modules, "url", &out_dir.join("url-module.js"))?;

    pack_vat_packages(&install_dir, &js_dir, &out_dir.join("vat-packages.tar.gz"))?;

    // Used by `ocap_vat::bundle_vat_source` (tests and dev tooling).
    println!("cargo:rustc-env=OCAP_VAT_NODE_MODULES={}", node_modules.display());
    println!("cargo:rustc-env=OCAP_VAT_BUILD_SCRIPT={}", js_dir.join("build.mjs").display());
    println!("cargo:rustc-env=OCAP_VAT_NODE={node}");
    Ok(())
}

/// The `*.patch` files of `dir` (patch-package's naming:
/// `<package>+<version>.patch`, `@scope+name+version.patch`), sorted by name.
fn read_patches(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    let mut patches = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if name.ends_with(".patch") {
            patches.push((name.to_string(), read(&path)?));
        }
    }
    patches.sort();
    Ok(patches)
}

/// Applies `patches` to the fresh install in `install_dir` with the pinned
/// `patch-package`, failing the build if any does not apply cleanly or was
/// made for another version than the one installed.
fn apply_patches(node: &str, install_dir: &Path, patches: &[(String, Vec<u8>)]) -> Result<(), String> {
    if patches.is_empty() {
        return Ok(());
    }
    let patch_dir = install_dir.join("patches");
    if patch_dir.exists() {
        fs::remove_dir_all(&patch_dir).map_err(|e| format!("clearing {}: {e}", patch_dir.display()))?;
    }
    fs::create_dir_all(&patch_dir).map_err(|e| format!("creating {}: {e}", patch_dir.display()))?;
    for (name, text) in patches {
        write(&patch_dir.join(name), text)?;
    }
    let tool = install_dir.join("node_modules/patch-package/index.js");
    if !tool.is_file() {
        return Err(format!(
            "js/patches/ has patches but patch-package is not installed ({}); it must be a \
             devDependency in js/package.json",
            tool.display()
        ));
    }
    let status = Command::new(node)
        .arg(&tool)
        .args(["--error-on-fail", "--error-on-warn"])
        .current_dir(install_dir)
        .status()
        .map_err(|e| format!("running `{node} patch-package`: {e}"))?;
    if !status.success() {
        return Err(format!("patch-package failed to apply js/patches/ ({status})"));
    }
    Ok(())
}

fn check_tool(program: &str, what: &str, var: &str) -> Result<(), String> {
    match Command::new(program).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{what} at `{program}` does not work ({}). The vat worker embeds a JS bundle \
             (SES + liveslots) built with npm and esbuild at build time.",
            out.status
        )),
        Err(e) => Err(format!(
            "{what} not found (`{program}`: {e}). The vat worker embeds a JS bundle \
             (SES + liveslots) built with npm and esbuild at build time: install Node.js \
             (>= 18) with npm, or set {var} to the binary."
        )),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// `node js/build.mjs <mode> <node_modules> <out>`: one esbuild bundle.
fn esbuild(node: &str, js_dir: &Path, node_modules: &Path, mode: &str, out: &Path) -> Result<(), String> {
    let status = Command::new(node)
        .arg(js_dir.join("build.mjs"))
        .arg(mode)
        .arg(node_modules)
        .arg(out)
        .status()
        .map_err(|e| format!("running `{node} build.mjs {mode}`: {e}"))?;
    if !status.success() {
        return Err(format!("bundling `{mode}` with esbuild failed ({status})"));
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// FNV-1a: a stable hash for the install stamp (no dependency needed).
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xffu8]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Dependencies of `js/package.json` that only the prelude imports (the `URL` and
/// `AbortController` endowments, `js/src/web/`), never a vat source: they are bundled into
/// the prelude and left out of the embedded packages. Checked against `package.json`, so a
/// rename cannot leave a stale name here.
const PRELUDE_ONLY: &[&str] = &["core-js-pure", "abort-controller"];

/// Directories of a package that no import reaches.
const SKIPPED_DIRS: &[&str] = &["node_modules", "test", "tests", "__tests__", "doc", "docs", ".bin"];

/// Packs the files a vat source may import into a gzip-compressed tar at `archive`:
/// * `node_modules/...`: the runtime `dependencies` of `js/package.json` but
///   [`PRELUDE_ONLY`] (`ses`, `@endo/*`, `@agoric/*`), and everything they depend on
///   (`dependencies`, plus the `peerDependencies` and `optionalDependencies` that are
///   installed), found Node-style in the install, nested `node_modules` included. Of each
///   package only `*.js`, `*.mjs`, `*.cjs` and `*.json` files (so every `package.json`), not
///   tests (`test/`, `*.test.js`, `*.spec.js`, ...), docs, source maps or type declarations;
/// * `compat/kernel-utils-exo.js`: what `@metamask/kernel-utils/exo` is aliased to.
///
/// The archive is deterministic: members sorted by name, mode 0644, owner 0, time 0, and a
/// file whose bytes were already packed is a hard link to the first copy (this also keeps
/// the nested second copy of `ses` nearly free).
fn pack_vat_packages(install_dir: &Path, js_dir: &Path, archive: &Path) -> Result<(), String> {
    let manifest = read_json(&js_dir.join("package.json"))?;
    let deps =
        manifest.get("dependencies").and_then(|d| d.as_object()).ok_or("js/package.json has no dependencies object")?;
    for name in PRELUDE_ONLY {
        if !deps.contains_key(*name) {
            return Err(format!("build.rs PRELUDE_ONLY names {name}, which js/package.json does not depend on"));
        }
    }
    let node_modules = install_dir.join("node_modules");
    let mut packages = BTreeSet::new();
    let mut pending: Vec<PathBuf> = Vec::new();
    for name in deps.keys().filter(|n| !PRELUDE_ONLY.contains(&n.as_str())) {
        pending.push(find_package(&node_modules, &node_modules, name).ok_or(format!("{name} is not installed"))?);
    }
    while let Some(dir) = pending.pop() {
        if !packages.insert(dir.clone()) {
            continue;
        }
        let manifest = read_json(&dir.join("package.json"))?;
        for (field, required) in [("dependencies", true), ("peerDependencies", false), ("optionalDependencies", false)]
        {
            let Some(names) = manifest.get(field).and_then(|d| d.as_object()) else { continue };
            for name in names.keys() {
                match find_package(&node_modules, &dir, name) {
                    Some(found) => pending.push(found),
                    None if required => {
                        return Err(format!("{} depends on {name}, which is not installed", dir.display()))
                    }
                    None => {}
                }
            }
        }
    }

    // Archive name → file, sorted.
    let mut members: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in &packages {
        collect_package_files(&node_modules, dir, &mut members)?;
    }
    members.insert("compat/kernel-utils-exo.js".into(), js_dir.join("src/compat/kernel-utils-exo.js"));

    let gzip = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gzip);
    let mut first_copy: HashMap<Vec<u8>, String> = HashMap::new();
    for (name, path) in &members {
        let bytes = read(path)?;
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let appended = if let Some(target) = first_copy.get(&bytes) {
            header.set_entry_type(tar::EntryType::Link);
            header.set_size(0);
            tar.append_link(&mut header, name, target)
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            let appended = tar.append_data(&mut header, name, bytes.as_slice());
            first_copy.insert(bytes, name.clone());
            appended
        };
        appended.map_err(|e| format!("packing {}: {e}", path.display()))?;
    }
    let gzip = tar.into_inner().map_err(|e| format!("packing the vat packages: {e}"))?;
    let bytes = gzip.finish().map_err(|e| format!("compressing the vat packages: {e}"))?;
    write(archive, &bytes)
}

/// Node's lookup of package `name` required from `from`: `from/node_modules/name`, then in
/// each parent directory, up to the install's top `node_modules`.
fn find_package(top: &Path, from: &Path, name: &str) -> Option<PathBuf> {
    let root = top.parent()?;
    let mut dir = from;
    loop {
        let candidate = if dir.file_name().is_some_and(|n| n == "node_modules") {
            dir.join(name)
        } else {
            dir.join("node_modules").join(name)
        };
        if candidate.join("package.json").is_file() {
            return Some(candidate);
        }
        if dir == root {
            return None;
        }
        dir = dir.parent()?;
    }
}

/// Adds the importable files of the package in `dir` to `members`, named by their path
/// relative to the install's top `node_modules` (under `node_modules/`).
fn collect_package_files(top: &Path, dir: &Path, members: &mut BTreeMap<String, PathBuf>) -> Result<(), String> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = fs::read_dir(&current).map_err(|e| format!("reading {}: {e}", current.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("reading {}: {e}", current.display()))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if path.is_dir() {
                if !SKIPPED_DIRS.contains(&name) {
                    stack.push(path);
                }
                continue;
            }
            let importable = [".js", ".mjs", ".cjs", ".json"].iter().any(|ext| name.ends_with(ext));
            let a_test = [".test.", ".spec."].iter().any(|infix| name.contains(infix));
            if !importable || a_test || !path.is_file() {
                continue;
            }
            let relative =
                path.strip_prefix(top).map_err(|_| format!("{} is outside {}", path.display(), top.display()))?;
            let relative = relative.to_str().ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
            members.insert(format!("node_modules/{relative}"), path);
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    serde_json::from_slice(&read(path)?).map_err(|e| format!("parsing {}: {e}", path.display()))
}
