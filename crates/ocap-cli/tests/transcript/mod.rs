#![allow(dead_code)] // each test crate uses part of it

//! Runs the shell sessions written in Markdown documents and compares what they print.
//!
//! The convention (README.md, docs/guide.md): a fenced block whose info string is
//! exactly `console` is a shell session, as a terminal shows it (other `console …` blocks are
//! left to the test that knows them).
//!
//! - A line starting with `$ ` is a command. It runs through `sh -c` in the repository root,
//!   with `ocap` on `PATH` (the binary under test) and `HOME` a fresh temporary directory,
//!   so the default home `~/.ocap` is a new, empty one. Every session of one document shares
//!   that `HOME`, in document order, as a reader following along would.
//! - The lines after it, up to the next command or the end of the block, are what it prints
//!   (stdout and stderr, interleaved as on a terminal). `…` stands for any text within a
//!   line; a line that is only `…` stands for any number of lines. If the expected output is
//!   a JSON document (as `ocap` prints one, indented, on a terminal), the output must be
//!   equal JSON (the test's stdout is not a terminal, so `ocap` prints it on one line).
//! - A command exits with status 0 unless its `#` comment says `exit status N`.
//! - `cargo run -p ocap-cli -- ARGS` runs `ocap ARGS` (the binary cargo would build and run);
//!   other `cargo` commands are not run here (CI runs them) and must show no output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// A fenced code block of a Markdown document.
#[derive(Debug, Clone)]
pub struct Block {
    /// The info string after the opening fence (`console`, `js title="…"`, ...).
    pub info: String,
    pub lines: Vec<String>,
    /// 1-based line of the opening fence, for messages.
    pub line: usize,
}

impl Block {
    /// The first word of the info string (the language).
    pub fn lang(&self) -> &str {
        self.info.split_whitespace().next().unwrap_or("")
    }

    /// The value of `key="value"` in the info string.
    pub fn attr(&self, key: &str) -> Option<String> {
        let start = self.info.find(&format!("{key}=\""))? + key.len() + 2;
        let len = self.info[start..].find('"')?;
        Some(self.info[start..start + len].to_owned())
    }

    /// The block's text as a file would hold it (lines joined, final newline).
    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

/// The fenced code blocks of a Markdown text (``` fences, not nested).
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block { info: info.trim().to_owned(), lines: Vec::new(), line: i + 1 });
                }
            }
            Some(mut b) => {
                if trimmed.trim_end() == "```" {
                    out.push(b);
                } else {
                    b.lines.push(line.to_owned());
                    open = Some(b);
                }
            }
        }
    }
    assert!(open.is_none(), "a code block is not closed");
    out
}

/// One command of a session and what the document says it prints.
#[derive(Debug, Clone)]
pub struct Step {
    pub command: String,
    pub expected: Vec<String>,
    pub status: i32,
    /// Where the document states it (`README.md:42`).
    pub at: String,
}

/// The text of a shell comment on a command line (after an unquoted ` #`), if any.
pub fn comment(command: &str) -> Option<&str> {
    let (mut single, mut double) = (false, false);
    let bytes = command.as_bytes();
    for (i, c) in command.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => {
                return Some(command[i + 1..].trim())
            }
            _ => {}
        }
    }
    None
}

/// The steps of every `console` block of a document, in order.
pub fn steps(doc_name: &str, markdown: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for block in blocks(markdown).into_iter().filter(|b| b.info == "console") {
        let mut current: Option<Step> = None;
        for (j, line) in block.lines.iter().enumerate() {
            if let Some(cmd) = line.strip_prefix("$ ") {
                out.extend(current.take());
                let status = comment(cmd)
                    .and_then(|c| c.split("exit status ").nth(1))
                    .map(|rest| {
                        rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().expect("exit status N")
                    })
                    .unwrap_or(0);
                current = Some(Step {
                    command: cmd.to_owned(),
                    expected: Vec::new(),
                    status,
                    at: format!("{doc_name}:{}", block.line + 1 + j),
                });
            } else {
                let step = current
                    .as_mut()
                    .unwrap_or_else(|| panic!("{doc_name}:{}: output before any `$ ` command", block.line + 1 + j));
                step.expected.push(line.trim_end().to_owned());
            }
        }
        out.extend(current);
    }
    for s in &mut out {
        while s.expected.last().is_some_and(|l| l.is_empty()) {
            s.expected.pop();
        }
    }
    out
}

/// Whether `line` matches `pattern`, where `…` stands for any text.
pub fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    if parts.is_empty() {
        return rest.is_empty();
    }
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match `patterns`, where a pattern line `…` stands for any number of lines.
pub fn lines_match(patterns: &[String], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == "…" => (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..])),
        Some((p, rest)) => lines.split_first().is_some_and(|(l, ls)| line_matches(p, l) && lines_match(rest, ls)),
    }
}

/// Whether `output` is what `expected` describes.
pub fn output_matches(expected: &[String], output: &str) -> bool {
    let joined = expected.join("\n");
    if joined.trim_start().starts_with(['{', '[', '"']) {
        if let Ok(want) = serde_json::from_str::<serde_json::Value>(&joined) {
            return serde_json::from_str::<serde_json::Value>(output.trim()).is_ok_and(|got| got == want);
        }
    }
    let mut lines: Vec<&str> = output.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines_match(expected, &lines)
}

/// A session: a temporary `HOME` whose daemon is stopped when it ends, even on failure.
pub struct Session {
    home: tempfile::TempDir,
    path: String,
}

impl Session {
    pub fn new() -> Session {
        // Short: `~/.ocap/daemon.sock` must fit in a Unix socket path.
        let home = tempfile::Builder::new().prefix("ocap-doc").tempdir_in("/tmp").expect("temp dir");
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_ocap")).parent().unwrap().to_owned();
        let path = std::env::join_paths(
            std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap()
        .into_string()
        .unwrap();
        Session { home, path }
    }

    /// The temporary `HOME`.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs one command line as `sh` would, with stderr merged into stdout. Returns the
    /// output and the exit status.
    pub fn run(&self, command: &str) -> (String, i32) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{{\n{command}\n}} 2>&1"))
            .current_dir(repo_root())
            .env("HOME", self.home())
            .env("PATH", &self.path)
            .env_remove("OCAP_HOME")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run sh");
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
    }

    /// Runs every step; panics at the first whose output or status differs from the document.
    /// Returns the commands that ran.
    pub fn check(&self, steps: &[Step]) -> Vec<String> {
        let mut ran = Vec::new();
        for step in steps {
            let command = match step.command.strip_prefix("cargo run -p ocap-cli -- ") {
                Some(args) => format!("ocap {args}"),
                None if step.command.starts_with("cargo ") => {
                    assert!(step.expected.is_empty(), "{}: output shown for a command this test does not run", step.at);
                    continue;
                }
                None => step.command.clone(),
            };
            let (output, status) = self.run(&command);
            assert!(
                status == step.status && output_matches(&step.expected, &output),
                "{}: `{}`\nexpected (exit status {}):\n{}\n\ngot (exit status {status}):\n{output}\ndaemon log:\n{}",
                step.at,
                step.command,
                step.status,
                step.expected.join("\n"),
                std::fs::read_to_string(self.home().join(".ocap/daemon.log")).unwrap_or_default(),
            );
            ran.push(command);
        }
        ran
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let home = self.home().join(".ocap");
        if home.exists() {
            let _ = Command::new(env!("CARGO_BIN_EXE_ocap"))
                .arg("--home")
                .arg(&home)
                .args(["daemon", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(line_matches(
            "Daemon started (pid …). Socket: …/daemon.sock",
            "Daemon started (pid 7). Socket: /h/daemon.sock"
        ));
        assert!(!line_matches("pid …)", "pid 7) x"));
        assert!(line_matches("abc", "abc") && !line_matches("abc", "abcd"));
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(lines_match(&p(&["a", "…", "z"]), &["a", "b", "c", "z"]));
        assert!(lines_match(&p(&["a", "…", "z"]), &["a", "z"]));
        assert!(!lines_match(&p(&["a", "…", "z"]), &["a", "b"]));
        assert!(output_matches(&p(&["{", "  \"a\": 1", "}"]), "{\"a\":1}\n"));
        assert!(!output_matches(&p(&["{", "  \"a\": 1", "}"]), "{\"a\":2}\n"));
        assert!(!output_matches(&p(&["4"]), "5\n"));
        assert_eq!(comment(r#"ocap send ko6 x '#y' # exits: exit status 1"#), Some("exits: exit status 1"));
        let s = steps("d", "```console\n$ ocap x   # exit status 1\nout\n\n$ ocap y\n```\n");
        assert_eq!((s.len(), s[0].status, s[0].expected.clone(), s[1].status), (2, 1, vec!["out".to_string()], 0));
    }
}
