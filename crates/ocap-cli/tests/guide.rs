//! docs/guide.md, run: its sessions with the real binary and real vats (the convention is in
//! `transcript/mod.rs`), its IO conversation over the real socket, and its example files
//! checked against what the guide shows, so that every example in the guide is the file
//! that runs, and prints what the guide says.

mod transcript;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use transcript::{blocks, repo_root, steps, Block, Session};

const GUIDE: &str = "docs/guide.md";

fn guide() -> String {
    std::fs::read_to_string(repo_root().join(GUIDE)).expect("docs/guide.md")
}

/// The example files in docs/guide/.
fn example_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("docs/guide"))
        .expect("docs/guide/")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".js") || n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn block<'a>(blocks: &'a [Block], info: &str) -> &'a Block {
    blocks.iter().find(|b| b.info == info).unwrap_or_else(|| panic!("{GUIDE} has a ```{info} block"))
}

#[test]
fn the_guide_sessions_print_what_they_show() {
    let steps = steps(GUIDE, &guide());
    assert!(steps.len() >= 10, "the guide's sessions are found: {steps:?}");
    let session = Session::new();
    let ran = session.check(&steps);
    // Every example cluster is run by a session (io.json by the test below).
    for name in example_files().iter().filter(|n| n.ends_with(".json") && *n != "io.json") {
        assert!(ran.iter().any(|c| c.contains(&format!("docs/guide/{name}"))), "no session of {GUIDE} uses {name}");
    }
}

/// Each file is shown in the guide exactly as it is (a block titled with its path), and
/// every file shown exists.
#[test]
fn the_guide_shows_the_example_files_as_they_are() {
    let blocks = blocks(&guide());
    let titled: Vec<(String, &Block)> = blocks.iter().filter_map(|b| b.attr("title").map(|t| (t, b))).collect();
    for name in example_files() {
        let path = format!("docs/guide/{name}");
        let (_, b) = titled.iter().find(|(t, _)| *t == path).unwrap_or_else(|| panic!("{GUIDE} does not show {path}"));
        let file = std::fs::read_to_string(repo_root().join(&path)).unwrap();
        assert_eq!(b.text(), file, "{GUIDE}:{}: the block differs from {path}", b.line);
    }
    for (title, b) in &titled {
        assert!(repo_root().join(title).is_file(), "{GUIDE}:{}: {title} does not exist", b.line);
    }
}

/// The IO example: `ocap run docs/guide/io.json` listens on its socket; a client types the
/// guide's lines and gets the guide's answers; once it disconnects, the run prints the
/// guide's last line.
#[test]
fn the_io_example_answers_as_the_guide_shows() {
    let blocks = blocks(&guide());
    let run = block(&blocks, "console io");
    let command = run.lines[0].strip_prefix("$ ocap ").expect("an ocap command");
    let command = command.split(" #").next().unwrap().trim();
    let expected_output = &run.lines[1..];
    let client = block(&blocks, "text io-client");
    let socket = client.lines[0].strip_prefix("$ socat - UNIX-CONNECT:").expect("a socat client");
    let conversation = &client.lines[1..];
    assert!(
        conversation.len() >= 2 && conversation.len().is_multiple_of(2),
        "lines typed and answered: {conversation:?}"
    );

    let socket = repo_root().join(socket);
    let mut ocap = Command::new(env!("CARGO_BIN_EXE_ocap"))
        .args(command.split_whitespace())
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ocap run");
    // Wait for the kernel to listen (it removes the socket when the run ends).
    let stream = loop {
        if let Some(status) = ocap.try_wait().unwrap() {
            let out = ocap.wait_with_output().unwrap();
            panic!("ocap run ended ({status}) before listening: {}", String::from_utf8_lossy(&out.stderr));
        }
        match UnixStream::connect(&socket) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for pair in conversation.chunks(2) {
        writeln!(writer, "{}", pair[0]).unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        assert_eq!(answer.trim_end_matches('\n'), pair[1], "the answer to {:?}", pair[0]);
    }
    writer.shutdown(std::net::Shutdown::Both).unwrap();
    let out = ocap.wait_with_output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        expected_output,
        "what `ocap {command}` prints; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!socket.exists(), "the socket is removed when the run ends");
}
