//! The identifiers the reconciler carries: a Jira issue's id and key, a GitLab issue's iid, and
//! a mapping's id. Each is parsed once, where it enters (the clients' decoders, the state
//! database's row decoding, a webhook event, the config), and carried typed everywhere else, so
//! an id is never mistaken for a key, nor a number for text that merely looks like one. A value
//! that does not parse is an error naming it ([`IdError`]), never silently dropped.

use std::fmt;
use std::str::FromStr;

/// A value that is not the identifier it should be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what}")]
pub struct IdError {
    /// What was expected ("Jira issue id", "Jira issue key").
    pub what: &'static str,
    /// The value, cut short (it comes from outside).
    pub value: String,
}

impl IdError {
    fn new(what: &'static str, value: &str) -> Self {
        IdError {
            what,
            value: value.chars().take(40).collect(),
        }
    }
}

/// A Jira issue's id (`10014`): stable across moves and project-key renames, so mirrors, facts
/// and markers are keyed on it. Jira sends it as a string of digits; it is kept as the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JiraId(pub u64);

impl JiraId {
    pub const fn new(n: u64) -> Self {
        JiraId(n)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl FromStr for JiraId {
    type Err = IdError;

    /// Digits only (no sign, no spaces), fitting 64 bits.
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::new("Jira issue id", s));
        }
        s.parse()
            .map(JiraId)
            .map_err(|_| IdError::new("Jira issue id", s))
    }
}

impl fmt::Display for JiraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Jira's JSON carries ids as strings (`"issueIdsOrKeys": ["10014"]`), and so do the JSON
/// lists the state database reads them from.
impl serde::Serialize for JiraId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A Jira issue's key (`VSA-5`): what people read, and what changes when the issue moves.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JiraKey(String);

/// Longer is no Jira key (project keys are short, issue numbers fit 64 bits).
const MAX_KEY_CHARS: usize = 300;

impl JiraKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The project part (`VSA-5` → `VSA`).
    pub fn project(&self) -> Option<&str> {
        Some(self.0.rsplit_once('-')?.0)
    }

    /// The number in the key (`VSA-5` → 5).
    pub fn number(&self) -> Option<u64> {
        self.0.rsplit_once('-')?.1.parse().ok()
    }
}

impl FromStr for JiraKey {
    type Err = IdError;

    /// Not empty, at most 300 characters, no control characters (it is printed and logged).
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.chars().count() > MAX_KEY_CHARS || s.chars().any(char::is_control) {
            return Err(IdError::new("Jira issue key", s));
        }
        Ok(JiraKey(s.to_string()))
    }
}

impl fmt::Display for JiraKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for JiraKey {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for JiraKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A GitLab issue's iid: its number within its project (`#7`). GitLab sends it as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(transparent)]
pub struct GitlabIid(pub u64);

impl GitlabIid {
    pub const fn new(n: u64) -> Self {
        GitlabIid(n)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GitlabIid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for GitlabIid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A mapping's id: its name, `<JIRA KEY>-><gitlab project>` (`VSA->acme/vsa`), as the config
/// spells it. The state database keys every row of a mapping on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MappingId(String);

impl MappingId {
    /// The id of the mapping from `jira_project` (upper case, as the config reads it) into
    /// `gitlab_project`.
    pub fn new(jira_project: &str, gitlab_project: &str) -> Self {
        MappingId(format!("{jira_project}->{gitlab_project}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A name as it is stored or typed (`report --mapping`), already spelt as the config spells it.
impl From<&str> for MappingId {
    fn from(name: &str) -> Self {
        MappingId(name.to_string())
    }
}

impl From<String> for MappingId {
    fn from(name: String) -> Self {
        MappingId(name)
    }
}

impl serde::Serialize for MappingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for MappingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for MappingId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for MappingId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_ids_are_digits_that_fit_and_print_as_sent() {
        assert_eq!("10014".parse::<JiraId>(), Ok(JiraId::new(10014)));
        assert_eq!(JiraId::new(10014).to_string(), "10014");
        assert_eq!(
            serde_json::to_string(&[JiraId::new(7)]).expect("json"),
            r#"["7"]"#
        );
        for bad in [
            "",
            "abc",
            "+1",
            " 1",
            "1.0",
            "-1",
            "99999999999999999999999",
        ] {
            let e = bad.parse::<JiraId>().expect_err(bad);
            assert_eq!(e.what, "Jira issue id", "{bad}");
        }
    }

    #[test]
    fn jira_keys_are_short_printable_text() {
        let key: JiraKey = "VSA-5".parse().expect("a key");
        assert_eq!((key.project(), key.number()), (Some("VSA"), Some(5)));
        assert_eq!(key, "VSA-5");
        assert!("".parse::<JiraKey>().is_err());
        assert!("A-1\n".parse::<JiraKey>().is_err());
        assert!("A".repeat(301).parse::<JiraKey>().is_err());
        let e = "x\u{7}".repeat(50).parse::<JiraKey>().expect_err("control");
        assert_eq!(e.value.chars().count(), 40, "cut short: {e}");
    }

    #[test]
    fn iids_and_mapping_ids_print_as_they_are_written() {
        assert_eq!(format!("#{}", GitlabIid::new(7)), "#7");
        assert_eq!(
            serde_json::to_string(&[GitlabIid::new(7)]).expect("json"),
            "[7]"
        );
        let m = MappingId::new("VSA", "acme/vsa");
        assert_eq!(m, "VSA->acme/vsa");
        assert_eq!(MappingId::from("VSA->acme/vsa"), m);
    }
}
