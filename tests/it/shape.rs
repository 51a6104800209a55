//! The size of the product's code, read from its source: no function over 60 lines, no file
//! over 600 lines of non-test code, no `too_many_arguments` waiver. A function whose blocks
//! each need a comment header is several functions; a file that holds several concerns is
//! several files.
//!
//! `DEBT` lists what broke these rules when the rules were written down. It may only shrink:
//! a new offender fails the test, and so does an entry that no longer offends (remove it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MAX_FN_LINES: usize = 60;
const MAX_FILE_LINES: usize = 600;

/// Offenders when the rules were written down, as `path` (a file) or `path::fn` (a function).
const DEBT: &[&str] = &[];

/// Every `.rs` file under `src/`, relative to the crate.
fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The lines before the file's unit tests (`#[cfg(test)]` followed by a `mod`).
fn non_test_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len());
    lines[..end].to_vec()
}

/// The name of the function a line declares, if it does (rustfmt's layout: `fn` after the
/// qualifiers, at the start of the line).
fn declared_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for qualifier in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// `(name, lines)` of every function with a body: from its `fn` line to the line that closes
/// it at the same indentation (rustfmt puts it there).
fn functions(lines: &[&str]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = declared_fn(line) else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let close = format!("{}}}", " ".repeat(indent));
        let body_end = lines[i..].iter().position(|l| {
            l.trim_end() == close || (l.len() - l.trim_start().len() == indent && l.ends_with(';'))
        });
        if let Some(end) = body_end {
            if !lines[i + end].ends_with(';') {
                out.push((name.to_string(), end + 1));
            }
        }
    }
    out
}

fn offenders() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeSet::new();
    for rel in sources() {
        let text = std::fs::read_to_string(root.join(&rel)).expect("source readable");
        let lines = non_test_lines(&text);
        let file = rel.to_string_lossy().to_string();
        if lines.len() > MAX_FILE_LINES {
            out.insert(file.clone());
        }
        for (name, n) in functions(&lines) {
            if n > MAX_FN_LINES {
                out.insert(format!("{file}::{name}"));
            }
        }
        if lines.iter().any(|l| l.contains("too_many_arguments")) {
            out.insert(format!("{file}::too_many_arguments"));
        }
    }
    out
}

#[test]
fn functions_and_files_stay_small() {
    let found = offenders();
    let debt: BTreeSet<String> = DEBT.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = found.difference(&debt).collect();
    let paid: Vec<&String> = debt.difference(&found).collect();
    assert!(
        new.is_empty(),
        "over {MAX_FN_LINES} lines a function, {MAX_FILE_LINES} a file, or a \
         too_many_arguments waiver: split them along their concepts: {new:#?}"
    );
    assert!(
        paid.is_empty(),
        "no longer too big: remove them from DEBT in tests/it/shape.rs: {paid:#?}"
    );
}

#[test]
fn the_measure_finds_long_functions_and_skips_unit_tests() {
    let mut text = String::from("pub async fn short() {\n    a();\n}\n\nfn long() {\n");
    text.push_str(&"    b();\n".repeat(70));
    text.push_str("}\n\nfn declared_only();\n\n#[cfg(test)]\nmod tests {\n    fn huge() {\n");
    text.push_str(&"        c();\n".repeat(100));
    text.push_str("    }\n}\n");
    let lines = non_test_lines(&text);
    assert_eq!(
        functions(&lines),
        vec![("short".to_string(), 3), ("long".to_string(), 72)]
    );
}
