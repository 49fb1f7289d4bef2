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
//!    write `$OUT_DIR/prelude.js`.
//!
//! Nothing third-party is committed: the lock file pins every package, and
//! a fix to one is a small patch file (see `js/patches/README.md`).
//! `OCAP_VAT_NPM` / `OCAP_VAT_NODE` override the `npm` / `node` binaries.

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

    let prelude = out_dir.join("prelude.js");
    let status = Command::new(&node)
        .arg(js_dir.join("build.mjs"))
        .arg("prelude")
        .arg(&node_modules)
        .arg(&prelude)
        .status()
        .map_err(|e| format!("running `{node} build.mjs prelude`: {e}"))?;
    if !status.success() {
        return Err(format!("bundling the prelude with esbuild failed ({status})"));
    }

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
