//! What `reconcile` prints: a summary line per mapping (or, with `--json`, one JSON document on
//! stdout for scripts), one `error:` line per failure on stderr, and the exit code.

use crate::reconcile::PassReport;
use crate::store::Counts;

/// The exit code of a pass: 2 when a failure needs the user (such as a rejected token), 1 for
/// failures a later pass may get past, 0 when every mapping converged.
fn exit_code(reports: &[PassReport]) -> i32 {
    if reports.iter().any(|r| r.needs_user) {
        2
    } else {
        i32::from(reports.iter().any(|r| !r.ok()))
    }
}

/// Failures on stderr (at priority err under journald), whatever stdout carries.
fn print_failures(reports: &[PassReport]) {
    for r in reports {
        for f in &r.failures {
            crate::logging::error_line(&format!("{}: {f}", r.mapping));
        }
    }
}

/// Summaries on stdout, one line per failure on stderr; returns the exit code.
pub fn print_reports(reports: &[PassReport], dry_run: bool) -> i32 {
    for r in reports {
        if dry_run {
            println!(
                "{}: {} pass would do {} action(s):",
                r.mapping,
                r.kind,
                r.planned.len()
            );
            for line in &r.planned {
                println!("  {line}");
            }
            if r.recipe.adopted + r.recipe.foreign > 0 {
                println!(
                    "  Automation recipe: {} issue(s) adopted, {} slot(s) holding other issues left alone",
                    r.recipe.adopted, r.recipe.foreign
                );
            }
        } else {
            println!("{}", r.summary());
        }
        for note in &r.notes {
            println!("  note: {note}");
        }
    }
    print_failures(reports);
    exit_code(reports)
}

/// `reconcile --json`: the whole report as one JSON document on stdout; returns the exit code
/// (the same as without `--json`).
pub fn print_json(reports: &[PassReport], dry_run: bool) -> i32 {
    let code = exit_code(reports);
    let doc = serde_json::json!({
        "dry_run": dry_run,
        "ok": code == 0,
        "exit_code": code,
        "error": null,
        "mappings": reports.iter().map(|r| mapping_json(r, dry_run)).collect::<Vec<_>>(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
    );
    print_failures(reports);
    code
}

fn mapping_json(r: &PassReport, dry_run: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "mapping": r.mapping,
        "kind": r.kind.label(),
        "ok": r.ok(),
        "needs_user": r.needs_user,
        "counts": counts_json(&r.counts),
        "failures": r.failures,
        "notes": r.notes,
        "checkpoint": r.checkpoint,
        "duration_seconds": (r.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        "cpu_seconds": (r.cpu.as_secs_f64() * 10_000.0).round() / 10_000.0,
    });
    if dry_run {
        v["planned"] = serde_json::json!(r.planned);
    }
    v
}

pub(super) fn counts_json(c: &Counts) -> serde_json::Value {
    serde_json::json!({
        "created": c.created, "closed": c.closed, "reopened": c.reopened, "updated": c.updated,
        "adopted": c.adopted, "unchanged": c.unchanged, "failed": c.failed,
        "jira_seen": c.jira_seen,
    })
}
