//! An issue's planning fields — `assignee`, `components`, `priority`, `duedate`, `fixVersions`
//! and the sprint custom field — and the field catalogue `GET /rest/api/{v}/field`.
//!
//! - Searches and reads return them like any field: only when named in `fields=` (or `*all`).
//! - The sprint field is found the way clients must find it: in `/field`, the entry whose
//!   `schema.custom` is `com.pyxis.greenhopper.jira:gh-sprint` (`customfield_10020` unless a
//!   test moves it with [`FakeJira::set_sprint_field_id`]; a second one can be added with
//!   [`FakeJira::add_custom_field`]). Its `schema.items` is `json` on Cloud, `string` on DC.
//! - `priority` is `Medium` on new issues, as on a default Jira site; `duedate` is
//!   `"yyyy-mm-dd"` or null.
//! - Changing these fields is an edit: `updated` moves and the changelog gets `assignee`,
//!   `priority`, `duedate`, `Fix Version`, `Component` and `Sprint` items (the Sprint item's
//!   `fieldId` is the custom field's id; from/to are comma-separated sprint ids).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde_json::{json, Value};

use super::agile::sprint_field_value;
use super::people::user_json;
use super::planning::read;
use super::render::Ctx;
use super::versions::{component_json, issue_version_json};
use super::{lock, ChangeItem, FakeJira, Shared, State as JiraState};

/// Where a default site keeps its sprints.
pub(super) const SPRINT_FIELD: &str = "customfield_10020";
pub(super) const GH_SPRINT: &str = "com.pyxis.greenhopper.jira:gh-sprint";

/// The priorities of a default site, highest first (their ids are 1..5).
const PRIORITIES: [&str; 5] = ["Highest", "High", "Medium", "Low", "Lowest"];

/// The planning fields of one version of an issue.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct IssuePlan {
    /// The person's internal number.
    pub(super) assignee: Option<u64>,
    pub(super) components: Vec<String>,
    pub(super) priority: Option<String>,
    pub(super) due: Option<NaiveDate>,
    /// Version ids.
    pub(super) fix_versions: Vec<u64>,
    /// Sprint ids, in the order they were given.
    pub(super) sprints: Vec<u64>,
}

impl IssuePlan {
    /// A new issue: no planning yet, the site's default priority.
    pub(super) fn new() -> IssuePlan {
        IssuePlan {
            priority: Some("Medium".to_owned()),
            ..IssuePlan::NONE
        }
    }

    /// Nothing set at all.
    pub(super) const NONE: IssuePlan = IssuePlan {
        assignee: None,
        components: Vec::new(),
        priority: None,
        due: None,
        fix_versions: Vec::new(),
        sprints: Vec::new(),
    };
}

/// A custom field a test added.
#[derive(Clone, Debug)]
pub(super) struct CustomField {
    id: String,
    name: String,
    custom_type: String,
}

pub(super) fn priority_exists(st: &JiraState, name: &str) -> bool {
    PRIORITIES.iter().any(|p| p.eq_ignore_ascii_case(name))
        || st
            .planning
            .priorities
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
}

fn priority_id(st: &JiraState, name: &str) -> String {
    match PRIORITIES.iter().position(|p| p.eq_ignore_ascii_case(name)) {
        Some(i) => (i + 1).to_string(),
        None => {
            let extra = st.planning.priorities.iter().position(|p| p == name);
            (10_000 + extra.unwrap_or(0)).to_string()
        }
    }
}

impl Ctx<'_> {
    /// The planning fields as (name, value), for `Ctx::issue` to select from.
    pub(super) fn plan_fields(&self, d: &super::IssueData) -> Vec<(String, Value)> {
        let planning = &self.state.planning;
        let p = &d.plan;
        let assignee = p
            .assignee
            .and_then(|n| planning.person(n))
            .map(|u| user_json(self, u));
        let components: Vec<Value> = p
            .components
            .iter()
            .filter_map(|name| {
                planning
                    .components
                    .iter()
                    .find(|c| c.project == d.project && c.name == *name)
            })
            .map(|c| component_json(self, c))
            .collect();
        let versions: Vec<Value> = p
            .fix_versions
            .iter()
            .filter_map(|id| planning.version(*id))
            .map(|v| issue_version_json(self, v))
            .collect();
        let priority = p.priority.as_ref().map(|name| {
            let id = priority_id(self.state, name);
            json!({"self": self.link(&format!("priority/{id}")), "name": name, "id": id,
                   "iconUrl": format!("{}/images/icons/priorities/{}.svg", self.base,
                                      name.to_lowercase())})
        });
        vec![
            ("assignee".to_owned(), assignee.unwrap_or(Value::Null)),
            ("components".to_owned(), json!(components)),
            ("priority".to_owned(), priority.unwrap_or(Value::Null)),
            ("duedate".to_owned(), json!(p.due.map(|d| d.to_string()))),
            ("fixVersions".to_owned(), json!(versions)),
            (
                planning.sprint_field_id(),
                sprint_field_value(self, &p.sprints),
            ),
        ]
    }

    /// A changelog item's `fieldId`.
    pub(super) fn field_id(&self, field: &str) -> String {
        match field {
            "Sprint" => self.state.planning.sprint_field_id(),
            "Fix Version" => "fixVersions".to_owned(),
            "Component" => "components".to_owned(),
            other => other.to_owned(),
        }
    }
}

/// Changelog items for the planning fields an edit changed.
pub(super) fn plan_changes(
    st: &JiraState,
    before: &IssuePlan,
    after: &IssuePlan,
) -> Vec<ChangeItem> {
    let planning = &st.planning;
    let mut items = Vec::new();
    let item = |field,
                from: Option<String>,
                from_s: Option<String>,
                to: Option<String>,
                to_s: Option<String>| ChangeItem {
        field,
        from,
        from_string: from_s,
        to,
        to_string: to_s,
    };
    if before.assignee != after.assignee {
        let who = |n: Option<u64>| n.and_then(|n| planning.person(n));
        let (a, b) = (who(before.assignee), who(after.assignee));
        let id = |p: Option<&super::people::Person>| p.map(|p| p.reference(planning.data_center));
        let name = |p: Option<&super::people::Person>| p.map(|p| p.display_name.clone());
        items.push(item("assignee", id(a), name(a), id(b), name(b)));
    }
    if before.priority != after.priority {
        let id = |p: &Option<String>| p.as_ref().map(|p| priority_id(st, p));
        items.push(item(
            "priority",
            id(&before.priority),
            before.priority.clone(),
            id(&after.priority),
            after.priority.clone(),
        ));
    }
    if before.due != after.due {
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        items.push(item(
            "duedate",
            day(before.due),
            day(before.due),
            day(after.due),
            day(after.due),
        ));
    }
    for (id, added) in list_changes(&before.fix_versions, &after.fix_versions) {
        let name = planning.version(id).map(|v| v.name.clone());
        let (some_id, none) = (Some(id.to_string()), None);
        items.push(if added {
            item("Fix Version", none.clone(), none, some_id, name)
        } else {
            item("Fix Version", some_id, name, none.clone(), none)
        });
    }
    for (name, added) in list_changes(&before.components, &after.components) {
        let text = Some(name);
        items.push(if added {
            item("Component", None, None, None, text)
        } else {
            item("Component", None, text, None, None)
        });
    }
    if before.sprints != after.sprints {
        let ids = |l: &[u64]| {
            Some(l.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
                .filter(|s| !s.is_empty())
        };
        let names = |l: &[u64]| {
            Some(
                l.iter()
                    .filter_map(|id| planning.sprint(*id))
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .filter(|s| !s.is_empty())
        };
        items.push(item(
            "Sprint",
            ids(&before.sprints),
            names(&before.sprints),
            ids(&after.sprints),
            names(&after.sprints),
        ));
    }
    items
}

/// Items removed from `before` (false) and added in `after` (true).
fn list_changes<T: Clone + PartialEq>(before: &[T], after: &[T]) -> Vec<(T, bool)> {
    let removed = before
        .iter()
        .filter(|x| !after.contains(x))
        .map(|x| (x.clone(), false));
    let added = after
        .iter()
        .filter(|x| !before.contains(x))
        .map(|x| (x.clone(), true));
    removed.chain(added).collect()
}

/// One entry of `/field`.
fn field_json(
    id: &str,
    name: &str,
    custom: Option<(&str, &str, &str)>,
    system: Option<(&str, Option<&str>)>,
) -> Value {
    let mut f = json!({"id": id, "key": id, "name": name, "untranslatedName": name,
                       "custom": custom.is_some(), "orderable": true, "navigable": true,
                       "searchable": true});
    if let Some((ty, items, custom_type)) = custom {
        let number: u64 = id.trim_start_matches("customfield_").parse().unwrap_or(0);
        f["clauseNames"] = json!([format!("cf[{number}]"), name]);
        f["schema"] = json!({"type": ty, "custom": custom_type, "customId": number});
        if !items.is_empty() {
            f["schema"]["items"] = json!(items);
        }
    } else if let Some((ty, items)) = system {
        f["clauseNames"] = json!([id.to_lowercase()]);
        f["schema"] = json!({"type": ty, "system": id});
        if let Some(items) = items {
            f["schema"]["items"] = json!(items);
        }
    }
    f
}

/// `GET /rest/api/{v}/field`: the system fields, the site's usual custom fields, and any a
/// test added. Anyone may read it.
pub(super) async fn list_fields(
    State(s): State<Arc<Shared>>,
    Path(v): Path<String>,
    headers: HeaderMap,
) -> Response {
    read(&s, &v, &headers, |ctx| {
        let planning = &ctx.state.planning;
        let sprint_items = if planning.data_center {
            "string"
        } else {
            "json"
        };
        let system: [(&str, &str, &str, Option<&str>); 12] = [
            ("summary", "Summary", "string", None),
            ("status", "Status", "status", None),
            ("issuetype", "Issue Type", "issuetype", None),
            ("project", "Project", "project", None),
            ("created", "Created", "datetime", None),
            ("updated", "Updated", "datetime", None),
            ("resolutiondate", "Resolved", "datetime", None),
            ("labels", "Labels", "array", Some("string")),
            ("assignee", "Assignee", "user", None),
            ("components", "Components", "array", Some("component")),
            ("priority", "Priority", "priority", None),
            ("fixVersions", "Fix versions", "array", Some("version")),
        ];
        let mut out: Vec<Value> = system
            .iter()
            .map(|(id, name, ty, items)| field_json(id, name, None, Some((ty, *items))))
            .collect();
        out.push(field_json(
            "duedate",
            "Due date",
            None,
            Some(("date", None)),
        ));
        let usual = [
            (
                "customfield_10014",
                "Epic Link",
                ("any", "", "com.pyxis.greenhopper.jira:gh-epic-link"),
            ),
            (
                "customfield_10015",
                "Start date",
                (
                    "date",
                    "",
                    "com.atlassian.jira.plugin.system.customfieldtypes:datepicker",
                ),
            ),
            (
                "customfield_10019",
                "Rank",
                ("any", "", "com.pyxis.greenhopper.jira:gh-lexo-rank"),
            ),
        ];
        for (id, name, custom) in usual {
            out.push(field_json(id, name, Some(custom), None));
        }
        out.push(field_json(
            &planning.sprint_field_id(),
            "Sprint",
            Some(("array", sprint_items, GH_SPRINT)),
            None,
        ));
        for f in &planning.custom_fields {
            let items = if f.custom_type == GH_SPRINT {
                sprint_items
            } else {
                ""
            };
            let ty = if items.is_empty() { "any" } else { "array" };
            out.push(field_json(
                &f.id,
                &f.name,
                Some((ty, items, &f.custom_type)),
                None,
            ));
        }
        Json(out).into_response()
    })
    .await
}

impl FakeJira {
    /// Assign the issue to a person (by accountId, username, key or e-mail), or unassign it.
    pub fn set_assignee(&self, key_or_id: &str, who: Option<&str>) {
        let number = who.map(|w| {
            let st = lock(&self.shared.state);
            let found = st.planning.user_by_any(w).map(|p| p.number);
            found.unwrap_or_else(|| panic!("fake Jira has no user {w}; call add_user first"))
        });
        self.mutate(key_or_id, |_, d| d.plan.assignee = number);
    }

    /// Set the issue's components (made in its project on first use).
    pub fn set_components(&self, key_or_id: &str, names: &[&str]) {
        self.mutate(key_or_id, |st, d| {
            for name in names {
                st.planning.component(&d.project, name);
            }
            d.plan.components = names.iter().map(|n| n.to_string()).collect();
        });
    }

    /// Set (or clear) the priority; names beyond the usual five become known to the site.
    pub fn set_priority(&self, key_or_id: &str, priority: Option<&str>) {
        self.mutate(key_or_id, |st, d| {
            if let Some(p) = priority.filter(|p| !priority_exists(st, p)) {
                st.planning.priorities.push(p.to_owned());
            }
            d.plan.priority = priority.map(str::to_owned);
        });
    }

    pub fn set_due_date(&self, key_or_id: &str, due: Option<NaiveDate>) {
        self.mutate(key_or_id, |_, d| d.plan.due = due);
    }

    /// Set the fix versions by name (versions of the issue's project).
    pub fn set_fix_versions(&self, key_or_id: &str, names: &[&str]) {
        self.mutate(key_or_id, |st, d| {
            d.plan.fix_versions = names
                .iter()
                .map(|n| {
                    let v = st
                        .planning
                        .versions
                        .iter()
                        .find(|v| v.project == d.project && v.name == *n);
                    v.map(|v| v.id)
                        .unwrap_or_else(|| panic!("fake Jira: {} has no version {n}", d.project))
                })
                .collect();
        });
    }

    /// Set the issue's sprints (ids, in this order; closed ones included).
    pub fn set_sprints(&self, key_or_id: &str, sprints: &[u64]) {
        self.mutate(key_or_id, |st, d| {
            for id in sprints {
                assert!(
                    st.planning.sprint(*id).is_some(),
                    "fake Jira has no sprint {id}"
                );
            }
            d.plan.sprints = sprints.to_vec();
        });
    }

    /// Keep sprints in another custom field (Data Center sites often use `customfield_10104`).
    pub fn set_sprint_field_id(&self, id: &str) {
        lock(&self.shared.state).planning.sprint_field = Some(id.to_owned());
    }

    /// Add a custom field to `/field` (e.g. a second `gh-sprint` field); returns its id.
    pub fn add_custom_field(&self, name: &str, custom_type: &str) -> String {
        let mut st = lock(&self.shared.state);
        let id = format!("customfield_{}", 10_200 + st.planning.custom_fields.len());
        st.planning.custom_fields.push(CustomField {
            id: id.clone(),
            name: name.to_owned(),
            custom_type: custom_type.to_owned(),
        });
        id
    }
}
