//! JSON shapes of the fake Jira's answers, modelled on captured Cloud responses.

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Map, Value};

use super::{History, IssueData, State};

/// Which fields a request asked for (`fields=summary,status`, `*all`, `-comment`).
#[derive(Clone, Debug, Default)]
pub struct FieldSel {
    all: bool,
    names: Vec<String>,
    excluded: Vec<String>,
}

impl FieldSel {
    /// Everything, as `GET /issue` answers by default.
    pub fn everything() -> FieldSel {
        FieldSel {
            all: true,
            ..FieldSel::default()
        }
    }

    /// Parses the items of a `fields` parameter; each may itself be a comma-separated list.
    /// No items means the search default: `id` (and `key`) only.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> FieldSel {
        let mut sel = FieldSel::default();
        for name in items.into_iter().flat_map(|i| i.split(',')).map(str::trim) {
            match name {
                "" => {}
                "*all" | "*navigable" => sel.all = true,
                _ => match name.strip_prefix('-') {
                    Some(ex) => sel.excluded.push(ex.to_string()),
                    None => sel.names.push(name.to_string()),
                },
            }
        }
        sel
    }

    fn wants(&self, name: &str) -> bool {
        !self.excluded.iter().any(|e| e == name)
            && (self.all || self.names.iter().any(|n| n == name))
    }
}

/// Jira's timestamp format: milliseconds, offset without a colon, in the account's zone.
pub fn jira_time(t: DateTime<Utc>, offset: FixedOffset) -> String {
    t.with_timezone(&offset)
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string()
}

/// What rendering needs besides the issue itself.
pub struct Ctx<'a> {
    pub base: &'a str,
    /// "2" or "3", for the `self` links.
    pub api: &'a str,
    pub offset: FixedOffset,
    pub state: &'a State,
}

impl Ctx<'_> {
    pub(super) fn link(&self, path: &str) -> String {
        format!("{}/rest/api/{}/{path}", self.base, self.api)
    }

    pub fn issue(&self, id: u64, d: &IssueData, sel: &FieldSel) -> Value {
        let mut fields = Map::new();
        for (name, value) in self.standard_fields(d) {
            if sel.wants(name) {
                fields.insert(name.to_string(), value);
            }
        }
        for (name, value) in self.plan_fields(d) {
            if sel.wants(&name) {
                fields.insert(name, value);
            }
        }
        // Overrides go last so odd-data tests can replace anything, even with null.
        for (name, value) in &d.raw {
            if sel.wants(name) {
                fields.insert(name.clone(), value.clone());
            }
        }
        json!({
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": id.to_string(),
            "self": self.link(&format!("issue/{id}")),
            "key": d.key,
            "fields": fields,
        })
    }

    fn standard_fields(&self, d: &IssueData) -> Vec<(&'static str, Value)> {
        let time = |t: DateTime<Utc>| Value::String(jira_time(t, self.offset));
        let mut out = vec![
            ("summary", json!(d.summary)),
            ("status", self.status(d)),
            ("created", time(d.created)),
            ("updated", time(d.updated)),
            (
                "resolutiondate",
                d.resolved.map(time).unwrap_or(Value::Null),
            ),
            ("resolution", self.resolution(d)),
            ("issuetype", self.issue_type(d)),
            ("project", self.project(&d.project)),
            ("labels", json!(d.labels)),
            ("priority", json!({"name": "Medium", "id": "3"})),
            ("description", Value::Null),
        ];
        // A few of the empty custom fields every real site has.
        for name in [
            "customfield_10010",
            "customfield_10014",
            "customfield_10015",
            "customfield_10020",
            "customfield_10021",
        ] {
            out.push((name, Value::Null));
        }
        out
    }

    fn status(&self, d: &IssueData) -> Value {
        let id = position_id(&self.state.statuses, &d.status);
        let (cat_id, color, cat_name) = category_info(&d.category);
        json!({
            "self": self.link(&format!("status/{id}")),
            "description": "",
            "iconUrl": format!("{}/images/icons/statuses/generic.png", self.base),
            "name": d.status,
            "id": id,
            "statusCategory": {
                "self": self.link(&format!("statuscategory/{cat_id}")),
                "id": cat_id,
                "key": d.category,
                "colorName": color,
                "name": cat_name,
            }
        })
    }

    /// Simplification: the fake's workflows set the resolution exactly when they resolve.
    fn resolution(&self, d: &IssueData) -> Value {
        match d.resolved {
            Some(_) => json!({
                "self": self.link("resolution/10000"),
                "id": "10000",
                "description": "Work has been completed on this issue.",
                "name": "Done",
            }),
            None => Value::Null,
        }
    }

    fn issue_type(&self, d: &IssueData) -> Value {
        let id = position_id(&self.state.issue_types, &d.issue_type);
        json!({
            "self": self.link(&format!("issuetype/{id}")),
            "id": id,
            "description": "",
            "name": d.issue_type,
            "subtask": false,
            "hierarchyLevel": 0,
        })
    }

    /// One changelog entry, shaped like Cloud's (see the captured changelog fixture).
    pub fn history(&self, h: &History, fields: Option<&[String]>) -> Option<Value> {
        let items: Vec<Value> = h
            .items
            .iter()
            .filter(|i| {
                let id = self.field_id(i.field);
                fields.is_none_or(|f| f.iter().any(|f| f == i.field || *f == id))
            })
            .map(|i| {
                json!({
                    "field": i.field,
                    "fieldtype": if i.field == "Sprint" { "custom" } else { "jira" },
                    "fieldId": self.field_id(i.field),
                    "from": i.from,
                    "fromString": i.from_string,
                    "to": i.to,
                    "toString": i.to_string,
                })
            })
            .collect();
        if items.is_empty() {
            return None;
        }
        Some(json!({
            "id": h.id.to_string(),
            "author": {
                "self": self.link("user?accountId=5b10a2844c20165700ede22h"),
                "accountId": "5b10a2844c20165700ede22h",
                "emailAddress": "pat@example.com",
                "displayName": "Pat Planner",
                "active": true,
                "timeZone": "Europe/Berlin",
                "accountType": "atlassian",
            },
            "created": jira_time(h.created, self.offset),
            "items": items,
        }))
    }

    pub fn project(&self, key: &str) -> Value {
        match self.state.project(key) {
            Some(p) => json!({
                "self": self.link(&format!("project/{}", p.id)),
                "id": p.id.to_string(),
                "key": p.key,
                "name": p.name,
                "projectTypeKey": "software",
                "simplified": false,
            }),
            None => Value::Null,
        }
    }
}

/// A stable id for a status or issue type name: its position in the site's list.
pub(super) fn position_id(list: &[String], name: &str) -> String {
    let pos = list
        .iter()
        .position(|s| s.eq_ignore_ascii_case(name))
        .unwrap_or(list.len());
    (10001 + pos).to_string()
}

/// (id, colorName, name) of a status category key, as Jira Cloud numbers them.
pub(super) fn category_info(key: &str) -> (u32, &'static str, String) {
    match key {
        "new" => (2, "blue-gray", "To Do".to_string()),
        "indeterminate" => (4, "yellow", "In Progress".to_string()),
        "done" => (3, "green", "Done".to_string()),
        "undefined" => (1, "medium-gray", "No Category".to_string()),
        other => (1, "medium-gray", other.to_string()),
    }
}
