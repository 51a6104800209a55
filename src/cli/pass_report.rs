//! What `reconcile` prints: a summary line per mapping (or, with `--json`, one JSON document on
//! stdout for scripts), one `error:` line per failure on stderr, and the exit code.

use crate::domain::Counts;
use crate::domain::PassOutcome;
use crate::reconcile::PassReport;

/// The exit code of a pass: 2 when a failure needs the user (such as a rejected token), 1 for
/// failures a later pass may get past, 3 when a stop (SIGTERM, SIGINT) cut a pass short and
/// nothing failed, 0 when every mapping converged.
fn exit_code(reports: &[PassReport]) -> i32 {
    if reports.iter().any(|r| r.needs_user()) {
        2
    } else if reports.iter().any(|r| r.outcome() == PassOutcome::Failed) {
        1
    } else if reports.iter().any(|r| r.stopped) {
        crate::cause::Cause::Stopped.exit_code()
    } else {
        0
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
            println!("{}", dry_run_headline(r));
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

/// What a dry run would do for one mapping: "nothing" rather than an empty list.
fn dry_run_headline(r: &PassReport) -> String {
    let read = crate::domain::plural(r.counts.jira_seen, "Jira issue", "Jira issues");
    if !r.ok() {
        return format!(
            "{}: {} pass could not finish planning ({read} read):",
            r.mapping, r.kind
        );
    }
    match r.planned.len() {
        0 if r.counts.jira_seen == 0 => format!(
            "{}: {} pass would do nothing: no Jira issue to compare",
            r.mapping, r.kind
        ),
        0 => format!(
            "{}: {} pass would do nothing: GitLab agrees with the {read} read",
            r.mapping, r.kind
        ),
        n => format!(
            "{}: {} pass would do {}:",
            r.mapping,
            r.kind,
            crate::domain::plural(n as u64, "action", "actions")
        ),
    }
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
        "outcome": r.outcome().label(),
        "needs_user": r.needs_user(),
        "counts": counts_json(&r.counts),
        "failures": r.failure_lines(),
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
