//! The READMEs' shell sessions, run with the real binary: every `$ ocap …` line of a
//! `console` block must print what the README shows (the convention is in
//! `transcript/mod.rs`), so the documentation cannot drift from the product.

mod transcript;

use transcript::{blocks, repo_root, steps, Session};

/// The documents whose sessions are run: the top-level README and the CLI's.
const DOCS: [&str; 2] = ["README.md", "crates/ocap-cli/README.md"];

fn read(doc: &str) -> String {
    std::fs::read_to_string(repo_root().join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

#[test]
fn the_readme_sessions_print_what_they_show() {
    for doc in DOCS {
        let steps = steps(doc, &read(doc));
        let session = Session::new();
        session.check(&steps);
    }
}

/// The quick start's documented demo line is what `ocap run` of the demo prints, and the
/// daemon walk-through is there and run (a README without sessions would pass vacuously).
#[test]
fn the_quick_start_and_the_walkthrough_are_checked() {
    let steps = steps("README.md", &read("README.md"));
    let demo = steps
        .iter()
        .find(|s| s.command.starts_with("cargo run -p ocap-cli -- run examples/demo/cluster.json"))
        .expect("the quick start runs the demo");
    assert_eq!(
        demo.expected,
        vec![r#"Bob says hello to Alice; Bob says "I received a promise kept"; counter is at 3"#.to_string()]
    );
    for cmd in ["ocap launch examples/demo/cluster.json", "ocap status", "ocap send", "ocap daemon stop"] {
        assert!(steps.iter().any(|s| s.command.starts_with(cmd)), "the README runs `{cmd}`");
    }
}

/// Shell commands in other kinds of blocks would escape the check: a block that runs `ocap`
/// must be a `console` session.
#[test]
fn every_ocap_command_is_in_a_checked_session() {
    for doc in DOCS {
        for b in blocks(&read(doc)) {
            if ["sh", "bash", "shell", "zsh"].contains(&b.lang()) {
                let runs_ocap = b.lines.iter().any(|l| {
                    let l = l.trim_start().trim_start_matches("$ ");
                    l.starts_with("ocap ") || l.starts_with("cargo run -p ocap-cli")
                });
                assert!(!runs_ocap, "{doc}:{}: a `{}` block runs ocap; make it a `console` session", b.line, b.lang());
            }
        }
    }
}
