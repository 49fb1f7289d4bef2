//! Records the commit the binary was built from (`git rev-parse --short HEAD`) in
//! `OCAP_GIT_COMMIT`, for `ocap bench`'s reports. Without git, or outside a checkout, nothing
//! is set and the binary says "unknown"; the build never fails for it.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OCAP_GIT_COMMIT");
    if let Ok(given) = std::env::var("OCAP_GIT_COMMIT") {
        println!("cargo:rustc-env=OCAP_GIT_COMMIT={given}");
        return;
    }
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else { return };
    println!("cargo:rustc-env=OCAP_GIT_COMMIT={commit}");
    // Run again when HEAD moves: HEAD itself, the branch it points at, and packed refs.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
