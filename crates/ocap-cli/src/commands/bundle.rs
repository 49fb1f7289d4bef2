//! `ocap bundle <file|dir>...`: write `<name>.bundle` next to each source, in the JS
//! kernel's bundle format (`{moduleFormat: "iife", code, exports, external}`). A directory
//! means every `.js` and `.ts` file directly inside it (not recursive), as in the JS CLI.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use crate::error::CliError;
use crate::output::{print_json, Spinner};

#[derive(Args)]
pub struct BundleArgs {
    /// Source files, or directories of them.
    #[arg(required = true)]
    pub targets: Vec<PathBuf>,
}

fn sources(target: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !target.is_dir() {
        return Ok(vec![target.to_path_buf()]);
    }
    let read = |source| CliError::Read { path: target.display().to_string(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(target).map_err(read)? {
        let path = entry.map_err(read)?.path();
        let is_source = matches!(path.extension().and_then(|e| e.to_str()), Some("js" | "ts"));
        if is_source && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// `dir/name.js` → `dir/name.bundle`.
pub fn bundle_path(source: &Path) -> PathBuf {
    source.with_extension("bundle")
}

/// Bundles every source; one that fails does not stop the others (each failure is reported
/// on stderr, or as `{"source", "error"}` with `--json`), and the exit status is 1 if any
/// failed.
pub fn bundle(args: BundleArgs, json: bool) -> Result<(), CliError> {
    let mut report = Vec::new();
    let mut failed = 0usize;
    for target in &args.targets {
        let files = sources(target)?;
        if files.is_empty() {
            return Err(CliError::Usage(format!("no .js or .ts files in {}", target.display())));
        }
        for source in files {
            let spinner = Spinner::new(format!("Bundling {}…", source.display()));
            let text = ocap_vat::bundle_vat(&source);
            drop(spinner);
            let out = bundle_path(&source);
            let written = text.map_err(|e| e.to_string()).and_then(|text| {
                std::fs::write(&out, &text).map_err(|e| format!("writing {}: {e}", out.display()))?;
                Ok(text.len())
            });
            match written {
                Ok(bytes) => {
                    if !json {
                        println!("Wrote {}: {bytes} bytes", out.display());
                    }
                    report.push(json!({"source": source.display().to_string(), "bundle": out.display().to_string(), "bytes": bytes}));
                }
                Err(error) => {
                    failed += 1;
                    if !json {
                        eprintln!("ocap: {}: {error}", source.display());
                    }
                    report.push(json!({"source": source.display().to_string(), "error": error}));
                }
            }
        }
    }
    if json {
        print_json(&serde_json::Value::Array(report), true);
    }
    if failed > 0 {
        if !json {
            eprintln!("ocap: {failed} source(s) could not be bundled");
        }
        return Err(CliError::Exit(1));
    }
    Ok(())
}
