//! Logging setup. Logs go to stderr, command output to stdout.
//!
//! - Level: `-v`/`-q` shift the configured level (`log.level`, else `info`) and win over
//!   `RUST_LOG`, which otherwise wins over `log.level`. A plain level applies to this crate;
//!   dependencies stay one step quieter (at `info`, only their warnings), so a library's chatter
//!   does not bury the pass lines; `-v` adds reqwest's debug records (connections, proxies).
//! - Under journald (systemd sets `$JOURNAL_STREAM` to stderr's `device:inode`), each line starts
//!   with its sd-daemon(3) priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so
//!   `journalctl -p err` finds the errors, and carries no timestamp (journald adds its own).
//! - Colours only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
//! - `log` records (reqwest, rustls: TLS and proxy trouble) become events too (`tracing-log`).

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde::Deserialize;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines look (`log.format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where stderr leads, which decides prefixes, timestamps and colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stderr {
    /// journald's stream (systemd said so through `$JOURNAL_STREAM`).
    Journal,
    /// A terminal that may show colours.
    ColourTerminal,
    /// A file, a pipe, a terminal with `NO_COLOR`.
    Plain,
}

/// What stderr is, decided once per process.
pub fn stderr() -> Stderr {
    static KIND: OnceLock<Stderr> = OnceLock::new();
    *KIND.get_or_init(|| {
        let journal = std::env::var("JOURNAL_STREAM").ok();
        if stderr_identity().is_some_and(|id| names_stream(journal.as_deref(), id)) {
            Stderr::Journal
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        {
            Stderr::ColourTerminal
        } else {
            Stderr::Plain
        }
    })
}

/// stderr's (device, inode), as `fstat` sees it.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// `$JOURNAL_STREAM` is `<device>:<inode>` of the stream systemd connected; a child whose stderr
/// was redirected elsewhere inherits the variable but not the stream, hence the comparison.
fn names_stream(journal_stream: Option<&str>, (dev, ino): (u64, u64)) -> bool {
    let Some((d, i)) = journal_stream.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// sd-daemon(3) priority of a level.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The filter directives: see the module documentation. `verbosity` is the number of `-v`
/// minus the number of `-q`.
pub fn directives(config_level: Option<&str>, verbosity: i8, rust_log: Option<&str>) -> String {
    const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
    let configured = config_level.map(str::trim).filter(|l| !l.is_empty());
    let plain = |l: &str| LEVELS.iter().position(|x| x.eq_ignore_ascii_case(l));
    if verbosity == 0 {
        if let Some(env) = rust_log.map(str::trim).filter(|l| !l.is_empty()) {
            return env.to_string();
        }
        if let Some(c) = configured.filter(|c| plain(c).is_none()) {
            // Full directive syntax ("info,jira_gitlab_reconciler::http=debug"): as written.
            return c.to_string();
        }
    }
    let base = configured.and_then(plain).unwrap_or(2) as i8;
    let at = (base + verbosity).clamp(0, LEVELS.len() as i8 - 1) as usize;
    let ours = LEVELS[at];
    // Dependencies one step quieter, but never below warnings.
    let theirs = LEVELS[at.saturating_sub(1).max(1).min(at)];
    match (ours, theirs) {
        (ours, theirs) if ours == theirs => ours.to_string(),
        // -v is for diagnosing: include reqwest's connection and proxy records.
        ("debug", theirs) => format!("{theirs},jira_gitlab_reconciler=debug,reqwest=debug"),
        (ours, theirs) => format!("{theirs},jira_gitlab_reconciler={ours}"),
    }
}

/// `log.level` as the filter should read it, or why it would not be read as the user meant:
/// a level, or directives each with a level (`target=level`), spaces around commas and empty
/// directives dropped. A bare word that is not a level ("inf") is valid directive syntax for
/// "everything from a module named inf" and would silence every other record, errors
/// included, so it is refused.
pub fn check_level(level: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |l: &str| LEVELS.iter().any(|x| x.eq_ignore_ascii_case(l.trim()));
    let directives: Vec<&str> = level
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err("it is empty".into());
    }
    for directive in &directives {
        match directive.rsplit_once('=') {
            Some((_, l)) if is_level(l) => {}
            Some((_, l)) => return Err(format!("{l:?} is not a level")),
            None if is_level(directive) => {}
            None => return Err(format!("{directive:?} is not a level")),
        }
    }
    let normal = directives.join(",");
    EnvFilter::try_new(&normal)
        .map(|_| normal)
        .map_err(|e| format!("not a filter: {e}"))
}

/// Install the process's subscriber. A second call (tests, the demo) keeps the first.
pub fn init(level: Option<&str>, format: LogFormat, verbosity: i8) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let wanted = directives(level, verbosity, rust_log.as_deref());
    // A bad level is reported once the subscriber is up, below.
    let (filter, bad_directives) = match EnvFilter::try_new(&wanted) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let kind = stderr();
    // The layer's own setting also decides how span fields are formatted: colours only on a
    // colour terminal, never in the journal or in JSON.
    let ansi = kind == Stderr::ColourTerminal && format == LogFormat::Text;
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let layer: Boxed = match (format, kind) {
        (LogFormat::Json, Stderr::Journal) => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .json()
            .event_format(Journald(format::format().json().flatten_event(true)))
            .with_writer(crate::progress::stderr)
            .boxed(),
        (LogFormat::Json, _) => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .json()
            .flatten_event(true)
            .with_writer(crate::progress::stderr)
            .boxed(),
        (LogFormat::Text, Stderr::Journal) => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .event_format(Journald(
                format::format()
                    .without_time()
                    .with_target(false)
                    .with_ansi(false),
            ))
            .with_writer(crate::progress::stderr)
            .boxed(),
        (LogFormat::Text, _) => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(crate::progress::stderr)
            .boxed(),
    };
    if tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .is_ok()
    {
        if let Some(e) = bad_directives {
            tracing::warn!("log level {wanted:?} is not valid ({e}); logging at info");
        }
    }
}

/// Wraps a formatter: every line it writes starts with the event's priority.
struct Journald<E>(E);

impl<S, N, E> FormatEvent<S, N> for Journald<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        write_prefixed(&mut writer, priority(*event.metadata().level()), &line)
    }
}

/// Each line of `text` as its own journal entry at `prio`.
fn write_prefixed(out: &mut impl std::fmt::Write, prio: u8, text: &str) -> std::fmt::Result {
    for line in text.lines() {
        writeln!(out, "<{prio}>{line}")?;
    }
    Ok(())
}

/// `error: <text>` on stderr, outside the log: a command's failure, printed once, at priority
/// `err` under journald and in red on a colour terminal.
pub fn error_line(text: &str) {
    eprint!("{}", render_error(text, stderr()));
}

fn render_error(text: &str, kind: Stderr) -> String {
    let mut out = String::new();
    match kind {
        Stderr::Journal => {
            let _ = write_prefixed(&mut out, 3, &format!("error: {text}"));
        }
        Stderr::ColourTerminal => {
            let _ = writeln!(out, "\x1b[1;31merror\x1b[0m: {text}");
        }
        Stderr::Plain => {
            let _ = writeln!(out, "error: {text}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_this_stderr() {
        assert!(names_stream(Some("8:1234"), (8, 1234)));
        assert!(!names_stream(Some("8:1234"), (8, 1235)));
        assert!(!names_stream(Some("8"), (8, 1234)));
        assert!(!names_stream(Some(""), (8, 1234)));
        assert!(!names_stream(None, (8, 1234)));
    }

    #[test]
    fn levels_flags_and_rust_log() {
        assert_eq!(
            directives(None, 0, None),
            "warn,jira_gitlab_reconciler=info"
        );
        assert_eq!(directives(Some("warn"), 0, None), "warn");
        assert_eq!(
            directives(Some("info"), 1, None),
            "info,jira_gitlab_reconciler=debug,reqwest=debug"
        );
        assert_eq!(
            directives(None, 2, None),
            "debug,jira_gitlab_reconciler=trace"
        );
        assert_eq!(directives(None, -1, None), "warn");
        assert_eq!(directives(None, -5, None), "error");
        assert_eq!(
            directives(None, 9, Some("warn")),
            "debug,jira_gitlab_reconciler=trace"
        );
        // RUST_LOG wins over the config, the flags over both.
        assert_eq!(directives(Some("debug"), 0, Some("warn")), "warn");
        assert_eq!(
            directives(Some("DEBUG"), -1, Some("trace")),
            "warn,jira_gitlab_reconciler=info"
        );
        // A directive string in the config is used as written.
        assert_eq!(
            directives(Some("info,jira_gitlab_reconciler::http=debug"), 0, None),
            "info,jira_gitlab_reconciler::http=debug"
        );
    }

    #[test]
    fn error_lines_by_destination() {
        assert_eq!(
            render_error("bad\nworse", Stderr::Journal),
            "<3>error: bad\n<3>worse\n"
        );
        assert_eq!(render_error("bad", Stderr::Plain), "error: bad\n");
        assert!(render_error("bad", Stderr::ColourTerminal).contains("\x1b[1;31merror"));
    }
}
