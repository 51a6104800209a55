//! What a server's answer says, read without trusting it: a JSON body decoded into the type
//! asked for (or an error saying what came instead: an HTML login page, other JSON), and the
//! human part of an error body. Server text is made safe (`safe_text`) and short.

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiErrorKind;
use super::retry::Failure;
use super::{header_str, Reply};

/// A 2xx body as `T`, or a `Decode` failure that names what came instead and keeps serde's
/// error as its source.
pub(super) fn decode<T: DeserializeOwned>(
    status: StatusCode,
    headers: HeaderMap,
    body: &[u8],
) -> Result<Reply<T>, Failure> {
    let e = match serde_json::from_slice::<T>(body) {
        Ok(body) => return Ok(Reply { body, headers }),
        Err(e) => e,
    };
    let is_html = header_str(&headers, CONTENT_TYPE.as_str()).is_some_and(|ct| ct.contains("html"))
        || body.trim_ascii_start().starts_with(b"<");
    let cause = if is_html {
        "an HTML page instead of JSON (a proxy or single-sign-on login page?)".to_string()
    } else {
        format!(
            "a body that is not the JSON expected ({}): {}",
            crate::safe_text::safe_within(&e.to_string(), 200),
            snippet(body)
        )
    };
    Err(Failure {
        kind: ApiErrorKind::Decode {
            status: status.as_u16(),
            cause,
        },
        source: Some(Box::new(e)),
    })
}

/// The human part of an error body: Jira's `errorMessages`/`errors`, GitLab's `message`/`error`,
/// else the start of the body; made safe for terminals and logs, at most 2 KiB.
pub(super) fn error_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return snippet(body);
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(msgs) = v.get("errorMessages").and_then(|m| m.as_array()) {
        parts.extend(msgs.iter().filter_map(|m| m.as_str().map(str::to_string)));
    }
    if let Some(errs) = v.get("errors").and_then(|m| m.as_object()) {
        parts.extend(errs.iter().map(|(k, v)| format!("{k}: {}", plain(v))));
    }
    for key in ["message", "error", "error_description"] {
        if let Some(m) = v.get(key) {
            parts.push(plain(m));
        }
    }
    if parts.is_empty() {
        snippet(body)
    } else {
        crate::safe_text::safe(&parts.join("; "))
    }
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The start of a body (at most 200 bytes of text), on one line, made safe: enough to recognise
/// it in a log.
fn snippet(body: &[u8]) -> String {
    const START: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * START)]);
    let text = text.trim_start();
    // Leading whitespace skipped (invalid UTF-8 may make the text longer than its bytes).
    let skipped = body.len().min(4 * START).saturating_sub(text.len());
    let one_line = crate::safe_text::safe_start(text, START, body.len().saturating_sub(skipped));
    if one_line.trim().is_empty() {
        return "(empty body)".into();
    }
    one_line
}

/// For the decoders' property tests: `body` decoded as a 200 answer, or the error's text,
/// which must say what is wrong (not JSON, not the JSON expected, an HTML page) and be safe.
#[cfg(test)]
pub(crate) fn decode_as<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    decode::<T>(StatusCode::OK, HeaderMap::new(), body)
        .map(|r| r.body)
        .map_err(|failure| {
            let text = super::error::describe(&failure.kind);
            assert!(
                text.contains("not the JSON expected") || text.contains("HTML page"),
                "an unclear decode error: {text}"
            );
            assert_eq!(crate::safe_text::safe(&text), text, "unsafe error text");
            assert!(failure.source.is_some(), "serde's error is kept");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_both_servers() {
        assert_eq!(
            error_message(br#"{"errorMessages":["Field 'foo' does not exist"],"errors":{}}"#),
            "Field 'foo' does not exist"
        );
        assert_eq!(
            error_message(br#"{"message":"404 Project Not Found"}"#),
            "404 Project Not Found"
        );
        assert_eq!(
            error_message(br#"{"message":{"title":["is too long (maximum is 255 characters)"]}}"#),
            r#"{"title":["is too long (maximum is 255 characters)"]}"#
        );
        assert_eq!(
            error_message(b"<html>\n<b>Login</b>"),
            "<html> <b>Login</b>"
        );
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(b"  \n "), "(empty body)");
        let long = format!("<html>{}", "x".repeat(5000));
        assert!(
            error_message(long.as_bytes()).ends_with("… (4806 more bytes cut)"),
            "{}",
            error_message(long.as_bytes())
        );
        // Invalid UTF-8 is shown replaced, never a panic.
        assert!(error_message(&[0xff; 900]).contains('\u{FFFD}'));
    }
}
