//! Printing: JSON results on stdout (indented when stdout is a terminal, one line
//! otherwise, as the JS CLI), plain tables, and a spinner on stderr when it is a terminal.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::ProgressBar;
use serde_json::Value as Json;

/// Prints a JSON result. `compact` forces one line (`--json`). Values as deep as vats
/// exchange are printed without exhausting the stack (`ocap_kernel::json::to_string`).
pub fn print_json(value: &Json, compact: bool) {
    let pretty = !compact && std::io::stdout().is_terminal();
    let text = if pretty { ocap_kernel::json::to_string_pretty(value) } else { ocap_kernel::json::to_string(value) };
    println!("{text}");
}

/// Left-aligned columns separated by two spaces, with a header row.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// Shortens `s` to `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A spinner on stderr while an operation runs, only when stderr is a terminal. Cleared when
/// dropped.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn new(message: impl Into<Cow<'static, str>>) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(&["ID", "NAME"], &[vec!["v1".into(), "alice".into()], vec!["v10".into(), "b".into()]]);
        assert_eq!(t, "ID   NAME\nv1   alice\nv10  b");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
