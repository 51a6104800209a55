//! Values that check themselves as they are read (parse, don't validate): a [`ConfigValue`]'s
//! `parse` is the only way to make one, so a `Config` that holds one holds a valid one, and
//! its error names the key (and the mapping) and the fix. The mapping's own keys are in
//! `mapping.rs`; tokens, read from files or the environment, in `tokens.rs`.
//!
//! A new key: a field in the file's shape (`file.rs`), a type here (or next to its section)
//! with `impl ConfigValue`, and one `parse` (or [`optional`]) call where its section is built.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::schedule::CronSchedule;

/// A value of the config file that checks itself as it is read.
pub trait ConfigValue: Sized {
    /// What the file holds for it, as serde reads the key.
    type Raw;
    fn parse(key: Key<'_>, raw: Self::Raw) -> Result<Self>;
}

/// A key that may be left out: absent stays `None`, present must parse.
pub fn optional<T: ConfigValue>(key: Key<'_>, raw: Option<T::Raw>) -> Result<Option<T>> {
    raw.map(|raw| T::parse(key, raw)).transpose()
}

/// Where a value sits in the file, for its errors: a key of a section (`retry.timeout`), or a
/// key of one mapping (`mapping #2: status_labels`).
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    /// The mapping the key belongs to (`mapping #2`), if it is a mapping's.
    pub mapping: Option<&'a str>,
    pub name: &'a str,
}

impl<'a> Key<'a> {
    pub fn new(name: &'a str) -> Self {
        Key {
            mapping: None,
            name,
        }
    }

    /// `mapping #2: ` before a mapping key's message, nothing before a section key's.
    pub fn within(&self) -> String {
        self.mapping.map(|m| format!("{m}: ")).unwrap_or_default()
    }

    /// An error about this key: `text` follows the mapping it is in, if any.
    pub fn wrong(&self, text: impl fmt::Display) -> Error {
        Error::Config(format!("{}{text}", self.within()))
    }
}

/// `retry.timeout`, or `mapping #2: status_labels`.
impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.within(), self.name)
    }
}

/// A server's base URL: http or https, with a host, without credentials or a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ConfigValue for ServerUrl {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
            key.wrong(format_args!(
                "{} = {raw:?} is not a valid URL ({e}); write it like \"https://acme.atlassian.net\"",
                key.name
            ))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(key.wrong(format_args!(
                "{} = {raw:?} must start with https:// (or http:// for a local test server)",
                key.name
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Echoing such a URL in an error would print the credentials.
            return Err(key.wrong(format_args!(
                "{} contains a user name or password: remove it from the URL and give the token \
                 through the environment or token_file",
                key.name
            )));
        }
        if url.host_str().is_none() {
            return Err(key.wrong(format_args!("{} = {raw:?} has no host name", key.name)));
        }
        Ok(ServerUrl(url.as_str().trim_end_matches('/').to_string()))
    }
}

impl ServerUrl {
    /// The URL without an API path admins often paste with it (GitLab's `/api/v4`).
    pub fn without_suffix(self, suffix: &str) -> Self {
        match self.0.strip_suffix(suffix) {
            Some(base) => ServerUrl(base.to_string()),
            None => self,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https:")
    }
}

impl Deref for ServerUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Compared as the text it is.
impl PartialEq<&str> for ServerUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A duration as admins write it, in quotes with its unit ("500ms", "90s", "1h30m"). Read
/// from any TOML value, so that a bare number (`overlap = 600`) gets a message naming the key
/// and the fix instead of serde's "invalid type".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(Duration);

impl ConfigValue for HumanDuration {
    type Raw = toml::Value;

    fn parse(key: Key<'_>, raw: toml::Value) -> Result<Self> {
        const FIX: &str =
            "write a number with its unit in quotes, e.g. \"500ms\", \"90s\", \"10m\", \"1h30m\"";
        let text = match raw {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => {
                return Err(key.wrong(format_args!(
                    "{} = {n} is a bare number, which is ambiguous (seconds? minutes?); {FIX} (\"{n}s\" for {n} seconds)",
                    key.name
                )))
            }
            other => {
                return Err(key.wrong(format_args!(
                    "{} = {other} is not a duration; {FIX}",
                    key.name
                )))
            }
        };
        parse_duration(&text).map(HumanDuration).ok_or_else(|| {
            key.wrong(format_args!(
                "{} = {text:?} is not a duration: {FIX}",
                key.name
            ))
        })
    }
}

impl HumanDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

/// A duration as admins write it, parsed by `humantime`: "500ms", "90s", "10m", "1h30m",
/// "2 days". Plain numbers are refused: a bare 10 is ambiguous.
pub fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim()).ok()
}

/// A file path as the config writes it: not empty, and not starting with `~`, which no shell
/// expands here (it would become a directory named `~` next to the config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigPath(PathBuf);

impl ConfigValue for ConfigPath {
    type Raw = PathBuf;

    fn parse(key: Key<'_>, raw: PathBuf) -> Result<Self> {
        if raw.as_os_str().is_empty() {
            return Err(key.wrong(format_args!(
                "{} is empty; give a file path, or remove the key for its default",
                key.name
            )));
        }
        if raw.to_string_lossy().starts_with('~') {
            return Err(key.wrong(format_args!(
                "{} = {:?} starts with ~, which is not expanded in the config; write the absolute \
                 path (e.g. /home/you/...), or a path relative to the config file's directory",
                key.name,
                raw.display().to_string()
            )));
        }
        Ok(ConfigPath(raw))
    }
}

impl ConfigPath {
    /// The path, made absolute against the config file's directory `base`.
    pub fn resolve(&self, base: &Path) -> PathBuf {
        base.join(&self.0)
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

/// An `address:port` to listen on. `example` is shown in the error, for the key's own use.
pub fn listen_address(key: Key<'_>, raw: &str, example: &str) -> Result<std::net::SocketAddr> {
    raw.parse().map_err(|_| {
        key.wrong(format_args!(
            "{} = {raw:?} is not an address:port such as \"{example}\"",
            key.name
        ))
    })
}

/// `log.level`: a level or tracing directives, stored as tracing will read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLevel(String);

impl ConfigValue for LogLevel {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        crate::logging::check_level(&raw)
            .map(LogLevel)
            .map_err(|why| {
                key.wrong(format_args!(
                    "{} = {raw:?}: {why}; use error, warn, info, debug or trace, or tracing \
                 directives such as \"info,jira_gitlab_reconciler::http=debug\"",
                    key.name
                ))
            })
    }
}

impl Deref for LogLevel {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A schedule, checked the way the scheduler will read it.
impl ConfigValue for CronSchedule {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        CronSchedule::new(&key.to_string(), &raw)
    }
}

/// `webhook.path`: a literal URL path the router can serve. axum reads a segment starting with
/// `:` or `*` as the old capture syntax (and panics at start-up), and `{...}` as a capture that
/// would accept any path; spaces and control characters are not in a URL Jira can post to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookPath(String);

impl ConfigValue for WebhookPath {
    type Raw = String;

    fn parse(key: Key<'_>, path: String) -> Result<Self> {
        let why = if !path.starts_with('/') || path.contains(['?', '#']) {
            "must be a URL path starting with /"
        } else if path.split('/').any(|s| s.starts_with([':', '*'])) {
            "has a segment starting with : or *, which the router reads as a parameter"
        } else if path.contains(['{', '}']) {
            "contains { or }, which the router reads as a parameter"
        } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "contains a space or a control character"
        } else {
            return Ok(WebhookPath(path));
        };
        Err(key.wrong(format_args!(
            "{} = {path:?} {why}; use a plain path such as \"/webhook/jira\"",
            key.name
        )))
    }
}

impl Deref for WebhookPath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Result<ServerUrl> {
        ServerUrl::parse(Key::new("jira.url"), raw.into())
    }

    #[test]
    fn server_urls_are_normalised_or_refused_naming_the_key() {
        let u = url(" https://gitlab.example.com/api/v4/ ").expect("valid");
        assert_eq!(
            u.without_suffix("/api/v4").as_str(),
            "https://gitlab.example.com"
        );
        assert!(url("https://acme.atlassian.net").expect("valid").is_https());
        let e = url("acme").expect_err("no scheme").to_string();
        assert!(
            e.starts_with("jira.url = \"acme\" is not a valid URL"),
            "{e}"
        );
        let e = url("ftp://acme").expect_err("ftp").to_string();
        assert!(e.contains("must start with https://"), "{e}");
        let e = url("https://bot:s3cret@acme")
            .expect_err("credentials")
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn durations() {
        // What was accepted before humantime...
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("10min"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 10m "), Some(Duration::from_secs(600)));
        // ...and what admins also type.
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2 days"), Some(Duration::from_secs(172_800)));
        // A bare number is ambiguous; garbage is garbage.
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
        let key = Key {
            mapping: None,
            name: "sync.overlap",
        };
        let d = HumanDuration::parse(key, toml::Value::String("1h30m".into())).expect("valid");
        assert_eq!(d.get(), Duration::from_secs(5400));
        let e = HumanDuration::parse(key, toml::Value::Boolean(true)).expect_err("a bool");
        assert!(e
            .to_string()
            .starts_with("sync.overlap = true is not a duration"));
    }

    #[test]
    fn a_mapping_key_names_its_mapping() {
        let key = Key {
            mapping: Some("mapping #2"),
            name: "state.path",
        };
        assert_eq!(key.to_string(), "mapping #2: state.path");
        let e = ConfigPath::parse(key, PathBuf::new()).expect_err("empty");
        assert!(
            e.to_string().starts_with("mapping #2: state.path is empty"),
            "{e}"
        );
        let p = ConfigPath::parse(Key::new("state.path"), "db".into()).expect("valid");
        assert_eq!(p.resolve(Path::new("/etc/x")), PathBuf::from("/etc/x/db"));
        let e = listen_address(Key::new("metrics.listen"), "9464", "127.0.0.1:9464");
        assert!(e
            .expect_err("no host")
            .to_string()
            .contains("\"127.0.0.1:9464\""));
    }
}
