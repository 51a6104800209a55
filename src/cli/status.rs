//! `status`: each mapping's checkpoint, last pass, counts, last error and lag, read from the
//! state database without a token and without writing it. A missing database is reported with
//! its path, never created: the usual cause is a config other than the service's.
//!
//! For monitoring, the exit code says whether every mapping's last pass succeeded (0) or one
//! failed (1), and `--json` prints one document of one shape whatever happened (a fatal error
//! included: see `fatal_json`).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::{ConfigFile, StateConfig};
use crate::domain::PassOutcome;
use crate::error::{Error, Result};
use crate::store::{MappingStatus, PassRecord, Store};

/// Exit code when a mapping's last pass failed (or its process died during it).
pub const LAST_PASS_FAILED: i32 = 1;

/// `status`; `config_problem`: what is wrong with the parts of the config status does not
/// read, to warn about.
pub fn run(
    cfg: &StateConfig,
    file: &ConfigFile,
    json: bool,
    config_problem: Option<&Error>,
) -> Result<i32> {
    let store = Store::open_read_only(&cfg.state_path)?;
    let mut rows = Vec::new();
    for m in &cfg.mappings {
        let st = match &store {
            Some(s) => Some(s.status(&m.id())?),
            None => None,
        };
        rows.push((m.name(), st));
    }
    let code = exit_code(rows.iter().filter_map(|(_, st)| st.as_ref()));
    let mut warnings = Vec::new();
    if let Some(e) = config_problem {
        let warning = super::config_problem_warning("status", e);
        tracing::warn!("{warning}");
        warnings.push(warning);
    }
    if store.is_none() {
        warnings.push(missing(cfg, file));
    }
    let shown = Shown {
        cfg,
        file,
        rows: &rows,
        now: Utc::now(),
    };
    if json {
        print_json(&shown, code, &warnings);
    } else {
        print_text(&shown, store.is_some());
    }
    Ok(code)
}

/// What `status` shows: each mapping by name, as the state database knows it (`None`: never
/// reconciled, or no database yet).
struct Shown<'a> {
    cfg: &'a StateConfig,
    file: &'a ConfigFile,
    rows: &'a [(String, Option<MappingStatus>)],
    now: DateTime<Utc>,
}

fn print_json(shown: &Shown<'_>, code: i32, warnings: &[String]) {
    let doc = serde_json::json!({
        "ok": code == 0,
        "exit_code": code,
        "error": null,
        "warnings": warnings,
        "config": shown.file.path,
        "state_database": shown.cfg.state_path,
        "mappings": shown
            .rows
            .iter()
            .map(|(name, st)| mapping_json(name, st.as_ref(), shown.now))
            .collect::<Vec<_>>(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
    );
}

fn print_text(shown: &Shown<'_>, has_store: bool) {
    println!("config          : {}", shown.file.describe());
    if has_store {
        println!("state database  : {}", shown.cfg.state_path.display());
    } else {
        println!("state database  : {}", missing(shown.cfg, shown.file));
    }
    for (name, st) in shown.rows {
        println!("\n{name}");
        match st {
            Some(st) => print_mapping(st, shown.now),
            None => println!("  never reconciled"),
        }
    }
}

/// `status --json` after a fatal error (no config, a database it cannot read): the document of
/// a successful run, with the error and no mappings.
pub fn fatal_json(e: &Error) -> serde_json::Value {
    serde_json::json!({
        "ok": false,
        "exit_code": e.exit_code(),
        "error": e.report(),
        "warnings": [],
        "config": null,
        "state_database": null,
        "mappings": [],
    })
}

/// 1 when a mapping's last finished pass failed or was cut short by a crash; a pass still
/// running or stopped by a signal is no failure.
fn exit_code<'a>(statuses: impl Iterator<Item = &'a MappingStatus>) -> i32 {
    let failed = |st: &MappingStatus| {
        st.last_pass
            .as_ref()
            .is_some_and(|p| matches!(p.outcome, PassOutcome::Failed | PassOutcome::Interrupted))
    };
    let mut statuses = statuses;
    if statuses.any(failed) {
        LAST_PASS_FAILED
    } else {
        0
    }
}

/// Why there is no state to show, and what to look at.
fn missing(cfg: &StateConfig, file: &ConfigFile) -> String {
    if cfg.state_path.exists() {
        // Present but of an older schema, which a read-only open cannot migrate.
        return format!(
            "{} was written by an older version; the next pass migrates it",
            cfg.state_path.display()
        );
    }
    format!(
        "{} does not exist (not created by status): no pass has run with this config yet, or \
         the service uses another config; this is {}",
        cfg.state_path.display(),
        file.describe()
    )
}

fn print_mapping(st: &MappingStatus, now: DateTime<Utc>) {
    let fmt = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_else(|| "-".into())
    };
    println!("  mirrored issues : {}", st.mirrors);
    println!(
        "  checkpoint      : {} (newest Jira update mirrored)",
        fmt(st.checkpoint)
    );
    match &st.last_pass {
        Some(p) => {
            println!(
                "  last pass       : {} {} ({}), {}",
                fmt(Some(p.started_at)),
                p.kind,
                p.outcome,
                counts_line(&p.counts)
            );
            if let Some(e) = &p.error {
                println!("  last error      : {e}");
            }
        }
        None => println!("  last pass       : -"),
    }
    let lag = st.last_success.as_ref().map(|p| now - p.started_at);
    println!(
        "  lag             : {}",
        lag.map(|l| format!(
            "up to {} s behind Jira (since the last successful pass began)",
            l.num_seconds()
        ))
        .unwrap_or_else(|| "unknown: no successful pass yet".into())
    );
    if st.pending_intents > 0 {
        println!(
            "  pending creates : {} (looked up by marker on the next pass)",
            st.pending_intents
        );
    }
}

fn counts_line(c: &crate::domain::Counts) -> String {
    format!(
        "created {}, closed {}, reopened {}, updated {}, adopted {}, unchanged {}, failed {}",
        c.created, c.closed, c.reopened, c.updated, c.adopted, c.unchanged, c.failed
    )
}

fn mapping_json(name: &str, st: Option<&MappingStatus>, now: DateTime<Utc>) -> serde_json::Value {
    let pass = |p: &PassRecord| {
        let mut v = serde_json::json!({
            "kind": p.kind.label(), "started_at": p.started_at, "finished_at": p.finished_at,
            "outcome": p.outcome.label(), "error": p.error,
        });
        if let (Some(obj), serde_json::Value::Object(counts)) = (
            v.as_object_mut(),
            super::pass_report::counts_json(&p.counts),
        ) {
            obj.extend(counts);
        }
        v
    };
    match st {
        // Never reconciled (or no database yet): the same keys, so scripts need no special case.
        None => serde_json::json!({
            "mapping": name, "mirrors": 0, "pending_creates": 0, "checkpoint": null,
            "last_pass": null, "last_success": null, "lag_seconds": null,
        }),
        Some(st) => serde_json::json!({
            "mapping": name,
            "mirrors": st.mirrors,
            "pending_creates": st.pending_intents,
            "checkpoint": st.checkpoint,
            "last_pass": st.last_pass.as_ref().map(pass),
            "last_success": st.last_success.as_ref().map(pass),
            "lag_seconds": st.last_success.as_ref().map(|p| (now - p.started_at).num_seconds()),
        }),
    }
}
