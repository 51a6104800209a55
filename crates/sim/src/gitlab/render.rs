//! JSON shapes of GitLab API objects (see `fixtures/gitlab/issue.json`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::{Issue, Project, Role, State, User};

/// GitLab's timestamp format: UTC, milliseconds, `Z` (`2016-01-04T15:31:46.176Z`).
pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn user(u: &User, base_url: &str) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "name": u.display_name(),
        "state": "active",
        "locked": false,
        "avatar_url": null,
        "web_url": format!("{base_url}/{}", u.username),
    })
}

/// "alice.smith" → "Alice Smith"; "root" is GitLab's "Administrator".
pub(super) fn display_name(username: &str) -> String {
    if username == "root" {
        return "Administrator".to_owned();
    }
    username
        .split(['.', '_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn user_by_id(st: &State, id: u64) -> Value {
    st.user(id)
        .map(|u| user(u, &st.base_url))
        .unwrap_or(Value::Null)
}

pub(super) fn project(
    st: &State,
    p: &Project,
    membership: Option<Role>,
    group_membership: Option<Role>,
) -> Value {
    let (namespace, name) = p.path.rsplit_once('/').unwrap_or(("", p.path.as_str()));
    let namespace_id = p.group.map(|g| st.groups[g].id);
    json!({
        "id": p.id,
        "description": null,
        "name": name,
        "name_with_namespace": p.path.replace('/', " / "),
        "path": name,
        "path_with_namespace": p.path,
        "default_branch": "main",
        "visibility": super::users::visibility_name(st, p.id),
        "web_url": format!("{}/{}", st.base_url, p.path),
        "namespace": { "id": namespace_id, "name": namespace, "path": namespace, "full_path": namespace, "kind": if namespace_id.is_some() { "group" } else { "user" } },
        "issues_enabled": true,
        "open_issues_count": p.issues.values().filter(|i| i.state == super::IssueState::Opened).count(),
        "permissions": {
            "project_access": membership.map(|role| json!({ "access_level": role.access_level(), "notification_level": 3 })),
            "group_access": group_membership.map(|role| json!({ "access_level": role.access_level(), "notification_level": 3 })),
        },
    })
}

pub(super) fn issue(st: &State, p: &Project, i: &Issue) -> Value {
    let web_url = format!("{}/{}/-/issues/{}", st.base_url, p.path, i.iid);
    let api_url = format!("{}/api/v4/projects/{}", st.base_url, p.id);
    json!({
        "id": i.id,
        "iid": i.iid,
        "project_id": p.id,
        "title": i.title,
        "description": i.description,
        "state": i.state.as_str(),
        "created_at": timestamp(i.created_at),
        "updated_at": timestamp(i.updated_at),
        "closed_at": i.closed_at.map(timestamp),
        "closed_by": i.closed_by.map(|id| user_by_id(st, id)),
        "labels": i.labels,
        "milestone": super::metadata::milestone_json(st, i),
        "assignees": super::metadata::assignees_json(st, i),
        "assignee": super::metadata::assignees_json(st, i).first().cloned(),
        "author": user_by_id(st, i.author),
        "type": "ISSUE",
        "issue_type": i.issue_type,
        "user_notes_count": 0,
        "merge_requests_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "due_date": i.plan.due_date.map(|d| d.to_string()),
        "confidential": false,
        "discussion_locked": null,
        "web_url": web_url,
        "time_stats": {
            "time_estimate": 0,
            "total_time_spent": 0,
            "human_time_estimate": null,
            "human_total_time_spent": null,
        },
        "task_completion_status": { "count": 0, "completed_count": 0 },
        "has_tasks": false,
        "references": {
            "short": format!("#{}", i.iid),
            "relative": format!("#{}", i.iid),
            "full": format!("{}#{}", p.path, i.iid),
        },
        "severity": "UNKNOWN",
        "subscribed": false,
        "moved_to_id": null,
        "imported": false,
        "imported_from": "none",
        "_links": {
            "self": format!("{api_url}/issues/{}", i.iid),
            "notes": format!("{api_url}/issues/{}/notes", i.iid),
            "award_emoji": format!("{api_url}/issues/{}/award_emoji", i.iid),
            "project": api_url,
            "closed_as_duplicate_of": null,
        },
    })
}
