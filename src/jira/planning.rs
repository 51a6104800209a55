//! An issue's planning fields — assignee, labels, components, priority, due date, fix
//! versions and sprints — as Jira sends them, and which of them a search asks for.
//!
//! A field asked for whose value cannot be read makes the issue unreadable (reported with its
//! key and why): planning it as "none" would remove a label or an assignee Jira still has.
//! `null` and absent are "none". Sprints: Cloud sends objects, Data Center strings like
//! `com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id=1,rapidViewId=2,state=ACTIVE,
//! name=Sprint 1,startDate=…,endDate=…,…]` (older versions in another key order, with local
//! offsets).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::decode::{cut, parse_jira_time, RawFields};
use crate::domain::{FixVersion, JiraUser, Planning, Sprint, SprintState};

/// Where Jira keeps sprints: the custom field whose `schema.custom` is this.
pub const GH_SPRINT: &str = "com.pyxis.greenhopper.jira:gh-sprint";

/// Which optional fields a search asks Jira for: only those a mapping mirrors, so a mapping
/// without them costs what it did before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueFields {
    pub assignee: bool,
    pub labels: bool,
    pub components: bool,
    pub priority: bool,
    pub due_date: bool,
    pub fix_versions: bool,
    /// The sprint custom field's id (`customfield_10020`), from [`super::JiraClient::sprint_field`].
    pub sprint: Option<String>,
}

impl IssueFields {
    /// The field names to add to the search's `fields`.
    pub fn names(&self) -> Vec<&str> {
        let flags = [
            (self.assignee, "assignee"),
            (self.labels, "labels"),
            (self.components, "components"),
            (self.priority, "priority"),
            (self.due_date, "duedate"),
            (self.fix_versions, "fixVersions"),
        ];
        let mut out: Vec<&str> = flags
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        out.extend(self.sprint.as_deref());
        out
    }
}

pub(super) fn read_planning(f: &RawFields) -> Result<Planning, String> {
    Ok(Planning {
        assignee: strict::<UserWire>(f.assignee, "assignee")?.map(UserWire::into_user),
        labels: strict::<Vec<String>>(f.labels, "labels")?.unwrap_or_default(),
        components: names(strict(f.components, "components")?),
        priority: strict::<NameWire>(f.priority, "priority")?.and_then(|p| p.name),
        due: match strict::<String>(f.duedate, "duedate")? {
            None => None,
            Some(d) => Some(day(&d, "duedate")?),
        },
        fix_versions: fix_versions(strict(f.fix_versions, "fixVersions")?)?,
        sprints: match strict::<Vec<Box<RawValue>>>(f.sprints, "sprint")? {
            None => Vec::new(),
            Some(list) => list.iter().map(|s| sprint(s)).collect::<Result<_, _>>()?,
        },
    })
}

/// A field asked for: `null` or absent is none; another shape than Jira's is an error.
fn strict<T: for<'de> Deserialize<'de>>(
    raw: Option<&RawValue>,
    name: &str,
) -> Result<Option<T>, String> {
    let Some(raw) = raw else { return Ok(None) };
    serde_json::from_str::<Option<T>>(raw.get()).map_err(|_| {
        format!(
            "its `{name}` value {} is not what Jira sends",
            cut(raw.get())
        )
    })
}

fn day(text: &str, name: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("its `{name}` value {:?} is not a date", cut(text)))
}

#[derive(Deserialize)]
pub(super) struct UserWire {
    #[serde(rename = "accountId", default)]
    account_id: Option<String>,
    /// Data Center's user key (and `name`, the login).
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(rename = "emailAddress", default)]
    email: Option<String>,
}

impl UserWire {
    pub(super) fn into_user(self) -> JiraUser {
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let cloud = nonempty(self.account_id);
        let data_center = nonempty(self.key).or(nonempty(self.name));
        JiraUser {
            data_center_key: cloud.is_none() && data_center.is_some(),
            account_id: cloud.or(data_center),
            display_name: nonempty(self.display_name),
            email: nonempty(self.email),
        }
    }
}

#[derive(Deserialize)]
struct NameWire {
    #[serde(default)]
    name: Option<String>,
}

fn names(list: Option<Vec<NameWire>>) -> Vec<String> {
    list.into_iter()
        .flatten()
        .filter_map(|n| n.name.filter(|n| !n.is_empty()))
        .collect()
}

#[derive(Deserialize)]
struct VersionWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    released: bool,
    #[serde(rename = "releaseDate", default)]
    release_date: Option<String>,
    #[serde(rename = "startDate", default)]
    start_date: Option<String>,
}

fn fix_versions(list: Option<Vec<VersionWire>>) -> Result<Vec<FixVersion>, String> {
    let mut out = Vec::new();
    for v in list.into_iter().flatten() {
        let Some(name) = v.name.filter(|n| !n.is_empty()) else {
            continue;
        };
        let date = |d: Option<String>| d.map(|d| day(&d, "fixVersions")).transpose();
        out.push(FixVersion {
            name,
            released: v.released,
            release_date: date(v.release_date)?,
            start_date: date(v.start_date)?,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct CloudSprint {
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    state: String,
    #[serde(rename = "startDate", default)]
    start: Option<String>,
    #[serde(rename = "endDate", default)]
    end: Option<String>,
    #[serde(rename = "completeDate", default)]
    complete: Option<String>,
}

/// One sprint: a Cloud object or a Data Center string.
fn sprint(raw: &RawValue) -> Result<Sprint, String> {
    let bad = || format!("its sprint {} is not one Jira sends", cut(raw.get()));
    if raw.get().starts_with('"') {
        let text: String = serde_json::from_str(raw.get()).map_err(|_| bad())?;
        return dc_sprint(&text).ok_or_else(bad);
    }
    let s: CloudSprint = serde_json::from_str(raw.get()).map_err(|_| bad())?;
    let time = |t: Option<String>| match t {
        None => Ok(None),
        Some(t) => parse_jira_time(&t).map(Some).ok_or_else(bad),
    };
    Ok(Sprint {
        id: s.id,
        name: s.name,
        state: SprintState::parse(&s.state),
        start: time(s.start)?,
        end: time(s.end)?,
        complete: time(s.complete)?,
    })
}

/// Data Center's `…Sprint@hash[key=value,…]`. A value runs to the next `,word=` (a sprint
/// name may hold commas, rarely followed by a word and `=`); `<null>` is none.
pub(super) fn dc_sprint(text: &str) -> Option<Sprint> {
    let body = text.get(text.find('[')? + 1..text.rfind(']')?)?;
    let pairs = dc_pairs(body);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .filter(|v| *v != "<null>")
    };
    let time = |k: &str| -> Option<Option<DateTime<Utc>>> {
        match get(k) {
            None => Some(None),
            Some(t) => parse_jira_time(t).map(Some),
        }
    };
    Some(Sprint {
        id: get("id")?.parse().ok()?,
        name: get("name").unwrap_or_default().to_string(),
        state: SprintState::parse(get("state").unwrap_or_default()),
        start: time("startDate")?,
        end: time("endDate")?,
        complete: time("completeDate")?,
    })
}

/// `a=1,name=x, y,b=2` → `[(a, 1), (name, "x, y"), (b, 2)]`.
fn dc_pairs(body: &str) -> Vec<(&str, &str)> {
    // Where each `key=` starts: the start, and every comma followed by a word and `=`.
    let starts_key = |rest: &str| {
        let word = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphanumeric())
                .len();
        word > 0 && rest[word..].starts_with('=')
    };
    let mut cuts = vec![0];
    cuts.extend(
        body.match_indices(',')
            .map(|(i, _)| i)
            .filter(|i| starts_key(&body[i + 1..])),
    );
    cuts.push(body.len());
    cuts.windows(2)
        .filter_map(|w| {
            let part = body[w[0]..w[1]].trim_start_matches(',');
            part.split_once('=')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_center_sprint_strings_of_both_orders_are_read() {
        let current =
            "com.atlassian.greenhopper.service.sprint.Sprint@5a1c2e57[id=3,rapidViewId=7,\
            state=ACTIVE,name=Sprint 3, the long one,startDate=2024-01-01T10:00:00.000Z,\
            endDate=2024-01-15T10:00:00.000Z,completeDate=<null>,activatedDate=<null>,sequence=3,\
            goal=<null>,synced=false,autoStartStop=false,incompleteIssuesDestinationId=<null>]";
        let s = dc_sprint(current).expect("readable");
        assert_eq!((s.id, s.name.as_str()), (3, "Sprint 3, the long one"));
        assert_eq!(s.state, SprintState::Active);
        assert_eq!(
            s.start.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-01-01T10:00:00+00:00")
        );
        assert_eq!(s.complete, None);
        let legacy = "com.atlassian.greenhopper.service.sprint.Sprint@a29f08[rapidViewId=<null>,\
            state=CLOSED,name=S1,startDate=2024-01-01T11:00:00.000+01:00,endDate=<null>,\
            completeDate=2024-01-20T11:00:00.000+01:00,id=1]";
        let s = dc_sprint(legacy).expect("readable");
        assert_eq!((s.id, s.state), (1, SprintState::Closed));
        assert_eq!(
            s.start.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-01-01T10:00:00+00:00")
        );
        assert!(dc_sprint("Sprint@1[name=no id]").is_none());
        assert!(dc_sprint("no brackets").is_none());
        assert!(dc_sprint("x[id=1,startDate=soon]").is_none());
    }

    fn issue(fields: serde_json::Value) -> Result<crate::domain::JiraIssue, String> {
        let mut all = serde_json::json!({"updated": "2024-01-01T00:00:00.000+0000"});
        for (k, v) in fields.as_object().expect("an object") {
            all[k] = v.clone();
        }
        let text = serde_json::json!({"id": "7", "key": "A-1", "fields": all}).to_string();
        super::super::parse_issue(&text, Some("customfield_10020"))
    }

    #[test]
    fn planning_fields_are_read_and_odd_ones_make_the_issue_unreadable() {
        let i = issue(serde_json::json!({
            "assignee": {"accountId": "5b10", "displayName": "Carol", "active": true,
                         "avatarUrls": {"48x48": "x"}},
            "labels": ["backend", "urgent"],
            "components": [{"id": "1", "name": "API"}, {"name": ""}],
            "priority": {"name": "High", "id": "2"},
            "duedate": "2024-02-29",
            "fixVersions": [{"name": "1.0", "released": true, "releaseDate": "2024-03-01"}],
            "customfield_10020": [{"id": 4, "name": "Sprint 4", "state": "closed", "boardId": 1,
                                   "startDate": "2024-01-01T10:00:00.000Z"},
                                  {"id": 5, "name": "Sprint 5", "state": "active"}],
            "customfield_99999": [[0, 0, 0], {"deep": [1, 2]}],
        }))
        .expect("readable");
        let p = &i.planning;
        assert_eq!(
            p.assignee.as_ref().map(|a| a.describe()).as_deref(),
            Some("Carol (accountId 5b10)")
        );
        assert_eq!(p.labels, ["backend", "urgent"]);
        assert_eq!(p.components, ["API"]);
        assert_eq!(p.priority.as_deref(), Some("High"));
        assert_eq!(p.due.map(|d| d.to_string()).as_deref(), Some("2024-02-29"));
        assert_eq!(p.fix_versions[0].name, "1.0");
        assert!(p.fix_versions[0].released);
        let sprints: Vec<(u64, SprintState)> =
            p.sprints.iter().map(|s| (s.id, s.state.clone())).collect();
        assert_eq!(
            sprints,
            [(4, SprintState::Closed), (5, SprintState::Active)]
        );
        // Nulls are "none".
        let none = issue(
            serde_json::json!({"assignee": null, "labels": null, "duedate": null,
            "customfield_10020": null}),
        )
        .expect("readable");
        assert_eq!(none.planning, Planning::default());
        // An odd value of a field asked for would plan a removal: the issue is reported instead.
        for (field, odd) in [
            ("labels", serde_json::json!("backend")),
            ("duedate", serde_json::json!("next week")),
            ("assignee", serde_json::json!(17)),
            (
                "customfield_10020",
                serde_json::json!(["Sprint@1[name=no id]"]),
            ),
            (
                "fixVersions",
                serde_json::json!([{"name": "1.0", "releaseDate": "soon"}]),
            ),
        ] {
            let e = issue(serde_json::json!({ field: odd })).expect_err(field);
            assert!(e.contains('`') || e.contains("sprint"), "{field}: {e}");
        }
    }

    #[test]
    fn only_the_fields_a_mapping_mirrors_are_asked_for() {
        assert!(IssueFields::default().names().is_empty());
        let all = IssueFields {
            assignee: true,
            labels: true,
            components: true,
            priority: true,
            due_date: true,
            fix_versions: true,
            sprint: Some("customfield_10020".into()),
        };
        assert_eq!(
            all.names(),
            [
                "assignee",
                "labels",
                "components",
                "priority",
                "duedate",
                "fixVersions",
                "customfield_10020"
            ]
        );
    }
}
