//! Request parameter parsing: query strings, form and JSON bodies, timestamps.
//!
//! Hand-written because axum's `Query` cannot collect repeated `iids[]=1&iids[]=2`, and
//! because GitLab (Grape) merges query, form and JSON parameters into one bag.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};

use super::api::ApiError;

/// Decode `%XX` escapes (and `+` as a space in query strings and forms). Malformed escapes
/// are kept literally and invalid UTF-8 is replaced, so no input can make this fail.
pub(super) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&c| hex_digit(c));
            let lo = bytes.get(i + 2).and_then(|&c| hex_digit(c));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' && plus_as_space { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `a=1&b=x+y&iids[]=2` as decoded pairs, in order, repeated keys kept.
pub(super) fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The last value of `name` among query pairs (Grape keeps the last of repeated keys).
pub(super) fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Parse an ISO 8601 timestamp the way a lenient server would: with or without fraction,
/// with `Z`, `+01:00` or `+0100`, or without an offset (read as UTC), or a bare date.
/// Stored at microsecond precision, like everything in GitLab's database.
pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    parse_time_exact(s.trim()).map(|t| t.trunc_subsecs(6))
}

fn parse_time_exact(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Split comma lists, trim, drop blanks: `"a, b,,c"` → `[a, b, c]`.
pub(super) fn split_labels<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    items
        .into_iter()
        .flat_map(|item| item.split(','))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
enum Param {
    Null,
    One(String),
    Many(Vec<String>),
}

/// The parameters of a write request: query string, then the body (JSON or form) on top.
#[derive(Debug, Default)]
pub(super) struct Params(HashMap<String, Param>);

impl Params {
    pub(super) fn parse(
        query: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Params, ApiError> {
        let mut params = Params::default();
        params.merge_pairs(query_pairs(query));
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let body_is_blank = body.iter().all(u8::is_ascii_whitespace);
        if body_is_blank {
            return Ok(params);
        }
        if ct.starts_with("application/json")
            || (!ct.starts_with("application/x-www-form-urlencoded") && body.first() == Some(&b'{'))
        {
            params.merge_json(body)?;
        } else if ct.starts_with("multipart/") {
            return Err(ApiError::bad_request(
                "multipart bodies are not supported by this fake",
            ));
        } else {
            params.merge_pairs(query_pairs(&String::from_utf8_lossy(body)));
        }
        Ok(params)
    }

    /// Form-style pairs: `key[]` accumulates a list, a plain key keeps its last value.
    fn merge_pairs(&mut self, pairs: Vec<(String, String)>) {
        for (key, value) in pairs {
            if let Some(base) = key.strip_suffix("[]") {
                match self.0.get_mut(base) {
                    Some(Param::Many(list)) => list.push(value),
                    _ => {
                        self.0.insert(base.to_owned(), Param::Many(vec![value]));
                    }
                }
            } else {
                self.0.insert(key, Param::One(value));
            }
        }
    }

    fn merge_json(&mut self, body: &[u8]) -> Result<(), ApiError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(&format!("body is not valid JSON: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(ApiError::bad_request("body must be a JSON object"));
        };
        for (key, value) in map {
            let param = match value {
                serde_json::Value::Null => Param::Null,
                serde_json::Value::Array(items) => {
                    Param::Many(items.iter().map(json_scalar_text).collect())
                }
                other => Param::One(json_scalar_text(&other)),
            };
            self.0.insert(key, param);
        }
        Ok(())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A single text value; `None` when absent or null; a list is a type error (400).
    pub(super) fn text(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(key) {
            None | Some(Param::Null) => Ok(None),
            Some(Param::One(v)) => Ok(Some(v)),
            Some(Param::Many(_)) => Err(ApiError::invalid(key)),
        }
    }

    /// The raw values of a parameter: `None` when absent, empty for JSON null, one item for a
    /// plain value (commas not split), the items of a list.
    pub(super) fn values(&self, key: &str) -> Option<Vec<String>> {
        match self.0.get(key)? {
            Param::Null => Some(Vec::new()),
            Param::One(v) => Some(vec![v.clone()]),
            Param::Many(items) => Some(items.clone()),
        }
    }

    /// A label list from either a comma string or an array; `None` when absent.
    /// Null means "no labels" (an empty list), as in GitLab.
    pub(super) fn labels(&self, key: &str) -> Option<Vec<String>> {
        match self.0.get(key)? {
            Param::Null => Some(Vec::new()),
            Param::One(v) => Some(split_labels([v.as_str()])),
            Param::Many(items) => Some(split_labels(items.iter().map(String::as_str))),
        }
    }

    /// A positive integer; anything else is a 400 naming the parameter.
    pub(super) fn positive_int(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.text(key)? {
            None => Ok(None),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(ApiError::invalid(key)),
            },
        }
    }

    pub(super) fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        match self.text(key)? {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(key)),
        }
    }
}

/// JSON scalars as the text Grape would coerce them from (`5` → "5", `true` → "true").
fn json_scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
