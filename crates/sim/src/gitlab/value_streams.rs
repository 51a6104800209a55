//! Value streams (Premium): the GraphQL resolvers behind `graphql.rs`.
//!
//! - `valueStreamCreate(input: {namespacePath, name, stages, setting})` and
//!   `valueStreamUpdate(input: {id, name, stages, setting})`. On **Free**, or without Reporter
//!   in the namespace, or for a project outside any group, the answer is a top-level error
//!   "The resource that you are attempting to access does not exist or you don't have
//!   permission to perform this action" with `data.<field>: null` (what GitLab.com Free says;
//!   a CE install would instead say the field does not exist — not modelled).
//! - Stage inputs: `name`, `custom` (default **true**), `hidden`, `startEventIdentifier`,
//!   `endEventIdentifier` (enum names such as `ISSUE_LABEL_ADDED`), `startEventLabelId`,
//!   `endEventLabelId` (`gid://gitlab/ProjectLabel/17`, `gid://gitlab/GroupLabel/5`), and on
//!   update `id` (`gid://gitlab/Analytics::CycleAnalytics::Stage/N`). An update **destroys
//!   every stage whose id it does not send** — also when it sends no `stages` at all
//!   (UNVERIFIED live) — and creates those without an id; the list order is the stage order.
//! - Validation (`errors` in the payload, nothing saved; see `rules.rs` for the wording):
//!   name 3–100 characters and unique per namespace, at most 50 streams, at most **15 stages**,
//!   custom stages not named exactly `issue`/`plan`/`code`/`test`/`review`/`staging`, default
//!   stages (`custom: false`) only by those names (their events are then the built-in ones),
//!   allowed event pairs, label events need a label visible from the project's group.
//! - Listing: `project(fullPath:) { valueStreams { nodes { ... } } }` (and `group`): on Free, or
//!   on Premium before any stream is saved, one in-memory stream `default` (id `"default"`,
//!   stage ids `"issue"`, `"plan"`, ...) with the six built-in stages.
//! - Ids: `gid://gitlab/Analytics::CycleAnalytics::ValueStream/N` and `.../Stage/N`.

mod rules;
#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use super::api::member_project;
use super::graphql::{Field, Lit, Vars};
use super::routes::{group_role_of, owner_for, Owner, ParentRef};
use super::{lock, FakeGitlab, Role, State, Tier};

use rules::{Draft, DEFAULT_STAGES};

pub(super) const STREAM_GID: &str = "gid://gitlab/Analytics::CycleAnalytics::ValueStream/";
pub(super) const STAGE_GID: &str = "gid://gitlab/Analytics::CycleAnalytics::Stage/";
const NO_PERMISSION: &str = "The resource that you are attempting to access does not exist or \
     you don't have permission to perform this action";

#[derive(Clone, Debug)]
pub(super) struct ValueStream {
    pub(super) id: u64,
    pub(super) namespace: Owner,
    pub(super) name: String,
    pub(super) stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Stage {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) custom: bool,
    pub(super) hidden: bool,
    pub(super) start: String,
    pub(super) end: String,
    pub(super) start_label: Option<u64>,
    pub(super) end_label: Option<u64>,
}

/// A top-level field of a query or mutation. `Err` is a field error (the field is null).
pub(super) fn resolve_root(
    st: &mut State,
    user: u64,
    f: &Field,
    vars: &Vars,
) -> Result<Value, String> {
    let arg = |name: &str| {
        f.arg(name)
            .map(|lit| vars.resolve(lit))
            .transpose()
            .map(|v| v.unwrap_or(Value::Null))
    };
    match f.name.as_str() {
        "project" => {
            let path = arg("fullPath")?;
            let pi = path
                .as_str()
                .and_then(|p| member_project(st, p, user).ok())
                .map(|(pi, _)| pi);
            Ok(pi.map_or(Value::Null, |pi| project_json(st, pi)))
        }
        "group" => {
            let path = arg("fullPath")?;
            let gi = path.as_str().and_then(|p| visible_group(st, user, p));
            Ok(gi.map_or(Value::Null, |gi| group_json(st, gi)))
        }
        "currentUser" => Ok(st.user(user).map_or(Value::Null, |u| {
            json!({"__typename": "UserCore", "id": format!("gid://gitlab/User/{}", u.id),
                   "username": u.username, "name": u.display_name()})
        })),
        "valueStreamCreate" | "valueStreamUpdate" => {
            let origin = match f.arg("input") {
                Some(Lit::Var(v)) => Origin::Variable(v.clone()),
                _ => Origin::Literal(f.name.clone()),
            };
            let input = arg("input")?;
            if f.name == "valueStreamCreate" {
                create(st, user, &input, &origin)
            } else {
                update(st, user, &input, &origin)
            }
        }
        other => Err(format!(
            "Field '{other}' is not implemented by this fake GitLab"
        )),
    }
}

/// Apply a field's arguments to its resolved value (`valueStreams(id:)`, `stages(id:)`,
/// `labels(searchTerm:, includeAncestorGroups:)`).
pub(super) fn filter_by_args(f: &Field, raw: Value, vars: &Vars) -> Value {
    let arg = |name: &str| f.arg(name).and_then(|l| vars.resolve(l).ok());
    let keep = |items: &Value, test: &dyn Fn(&Value) -> bool| -> Value {
        let list = items.as_array().cloned().unwrap_or_default();
        Value::Array(list.into_iter().filter(|i| test(i)).collect())
    };
    match f.name.as_str() {
        "valueStreams" | "stages" => {
            let Some(id) = arg("id").filter(|v| !v.is_null()) else {
                return raw;
            };
            let by_id = |v: &Value| v["id"] == id;
            if f.name == "stages" {
                keep(&raw, &by_id)
            } else {
                json!({"__typename": raw["__typename"], "nodes": keep(&raw["nodes"], &by_id)})
            }
        }
        "labels" => {
            let term = arg("searchTerm").and_then(|v| v.as_str().map(str::to_lowercase));
            let ancestors = arg("includeAncestorGroups") == Some(json!(true));
            let test = |v: &Value| {
                let title = v["title"].as_str().unwrap_or("").to_lowercase();
                term.as_ref().is_none_or(|t| title.contains(t))
                    && (ancestors || v[INHERITED] != json!(true))
            };
            json!({"__typename": raw["__typename"], "nodes": keep(&raw["nodes"], &test)})
        }
        _ => raw,
    }
}

/// Internal mark on labels that come from an ancestor group (not a GraphQL name, so a client
/// can never select it).
const INHERITED: &str = "@inherited";

fn visible_group(st: &State, user: u64, path: &str) -> Option<usize> {
    match owner_for(st, user, &ParentRef::Group(path.to_owned())) {
        Ok((Owner::Group(gi), _)) => Some(gi),
        _ => None,
    }
}

fn project_json(st: &State, pi: usize) -> Value {
    let p = &st.projects[pi];
    let labels: Vec<Value> = st
        .visible_labels(pi)
        .map(|l| label_json(st, l.id, !p.labels.iter().any(|o| o.id == l.id)))
        .collect();
    namespace_json(st, "Project", p.id, &p.path, Owner::Project(pi), labels)
}

fn group_json(st: &State, gi: usize) -> Value {
    let g = &st.groups[gi];
    let labels: Vec<Value> = st
        .group_and_ancestors(gi)
        .into_iter()
        .flat_map(|h| st.groups[h].labels.iter().map(move |l| (h, l)))
        .map(|(h, l)| label_json(st, l.id, h != gi))
        .collect();
    namespace_json(st, "Group", g.id, &g.path, Owner::Group(gi), labels)
}

/// A `Project` or `Group` object with everything the schema lets a client select.
fn namespace_json(
    st: &State,
    kind: &str,
    id: u64,
    path: &str,
    owner: Owner,
    labels: Vec<Value>,
) -> Value {
    json!({
        "__typename": kind,
        "id": format!("gid://gitlab/{kind}/{id}"),
        "fullPath": path,
        "name": path.rsplit('/').next().unwrap_or(path),
        "valueStreams": streams_json(st, owner),
        "labels": {"__typename": "LabelConnection", "nodes": labels},
    })
}

fn label_json(st: &State, id: u64, inherited: bool) -> Value {
    let Some((l, is_project)) = st.label_by_id(id) else {
        return Value::Null;
    };
    let kind = if is_project {
        "ProjectLabel"
    } else {
        "GroupLabel"
    };
    json!({
        "__typename": "Label",
        "id": format!("gid://gitlab/{kind}/{}", l.id),
        "title": l.name,
        "color": l.color,
        "description": l.description,
        INHERITED: inherited,
    })
}

/// The namespace's saved streams (by name) on Premium; else the in-memory `default` one.
fn streams_json(st: &State, owner: Owner) -> Value {
    let mut saved: Vec<&ValueStream> = st
        .planning
        .value_streams
        .iter()
        .filter(|v| v.namespace == owner)
        .collect();
    saved.sort_by_key(|v| (v.name.to_lowercase(), v.id));
    let nodes: Vec<Value> = if st.tier == Tier::Premium && !saved.is_empty() {
        saved.iter().map(|v| stream_json(st, v)).collect()
    } else {
        vec![default_stream_json()]
    };
    json!({"__typename": "ValueStreamConnection", "nodes": nodes})
}

fn default_stream_json() -> Value {
    let stages: Vec<Value> = DEFAULT_STAGES
        .iter()
        .map(|(name, start, end)| {
            json!({"__typename": "ValueStreamStage", "id": name, "name": name, "custom": false,
                   "hidden": false, "startEventIdentifier": start, "endEventIdentifier": end,
                   "startEventLabel": null, "endEventLabel": null})
        })
        .collect();
    json!({"__typename": "ValueStream", "id": "default", "name": "default", "stages": stages})
}

fn stream_json(st: &State, v: &ValueStream) -> Value {
    let stages: Vec<Value> = v
        .stages
        .iter()
        .map(|s| {
            let label = |id: Option<u64>| id.map_or(Value::Null, |id| label_json(st, id, false));
            json!({"__typename": "ValueStreamStage", "id": format!("{STAGE_GID}{}", s.id),
                   "name": s.name, "custom": s.custom, "hidden": s.hidden,
                   "startEventIdentifier": s.start, "endEventIdentifier": s.end,
                   "startEventLabel": label(s.start_label), "endEventLabel": label(s.end_label)})
        })
        .collect();
    json!({"__typename": "ValueStream", "id": format!("{STREAM_GID}{}", v.id),
           "name": v.name, "stages": stages})
}

/// Where an input came from, for GraphQL's coercion error wording.
pub(super) enum Origin {
    Variable(String),
    Literal(String),
}

/// `authorize :admin_value_stream`: Premium, Reporter and up, a project inside a group.
fn authorize(st: &State, user: u64, owner: Owner) -> Result<(), String> {
    let role = match owner {
        Owner::Project(pi) if st.projects[pi].group.is_some() => {
            let admin = st.user(user).is_some_and(|u| u.admin);
            st.member_role(pi, user).or(admin.then_some(Role::Owner))
        }
        Owner::Project(_) => None,
        Owner::Group(gi) => group_role_of(st, gi, user),
    };
    let allowed = st.tier == Tier::Premium && role.is_some_and(|r| r >= Role::Reporter);
    allowed
        .then_some(())
        .ok_or_else(|| NO_PERMISSION.to_owned())
}

fn namespace_of(st: &State, user: u64, path: &str) -> Result<Owner, String> {
    if let Ok((pi, _)) = member_project(st, path, user) {
        return Ok(Owner::Project(pi));
    }
    visible_group(st, user, path)
        .map(Owner::Group)
        .ok_or_else(|| NO_PERMISSION.to_owned())
}

fn payload(st: &State, saved: Option<u64>, errors: Vec<String>) -> Value {
    let stream = saved
        .and_then(|id| st.planning.value_streams.iter().find(|v| v.id == id))
        .map_or(Value::Null, |v| stream_json(st, v));
    json!({"__typename": "ValueStreamPayload", "valueStream": stream, "errors": errors,
           "clientMutationId": null})
}

fn create(st: &mut State, user: u64, input: &Value, origin: &Origin) -> Result<Value, String> {
    let input = rules::coerce(input, true, origin)?;
    let path = input.namespace_path.clone().unwrap_or_default();
    let owner = namespace_of(st, user, &path)?;
    authorize(st, user, owner)?;
    let name = input.name.clone().unwrap_or_default();
    let drafts = rules::drafts(&[], &input.stages.unwrap_or_default())?;
    let errors = rules::validate(st, owner, None, &name, &drafts);
    if !errors.is_empty() {
        return Ok(payload(st, None, errors));
    }
    let id = st.planning.next_id();
    let stages = persist(st, drafts);
    st.planning.value_streams.push(ValueStream {
        id,
        namespace: owner,
        name,
        stages,
    });
    Ok(payload(st, Some(id), Vec::new()))
}

fn update(st: &mut State, user: u64, input: &Value, origin: &Origin) -> Result<Value, String> {
    let input = rules::coerce(input, false, origin)?;
    let id = input.id.unwrap_or_default();
    let index = st.planning.value_streams.iter().position(|v| v.id == id);
    let Some(index) = index else {
        return Err(NO_PERMISSION.to_owned());
    };
    let stream = st.planning.value_streams[index].clone();
    authorize(st, user, stream.namespace)?;
    let name = input.name.clone().unwrap_or_else(|| stream.name.clone());
    // The newest GitLab always rebuilds the stage list: no `stages` means none.
    let drafts = rules::drafts(&stream.stages, &input.stages.unwrap_or_default())?;
    let errors = rules::validate(st, stream.namespace, Some(id), &name, &drafts);
    if !errors.is_empty() {
        return Ok(payload(st, None, errors));
    }
    let stages = persist(st, drafts);
    let v = &mut st.planning.value_streams[index];
    v.name = name;
    v.stages = stages;
    Ok(payload(st, Some(id), Vec::new()))
}

/// Give new stages their ids.
fn persist(st: &mut State, drafts: Vec<Draft>) -> Vec<Stage> {
    drafts
        .into_iter()
        .map(|d| {
            let id = d.id.unwrap_or_else(|| st.planning.next_id());
            Stage {
                id,
                name: d.name,
                custom: d.custom,
                hidden: d.hidden,
                start: d.start.unwrap_or_default(),
                end: d.end.unwrap_or_default(),
                start_label: d.start_label,
                end_label: d.end_label,
            }
        })
        .collect()
}

/// What a test sees of a saved value stream.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueStreamSnapshot {
    pub id: String,
    pub name: String,
    /// (name, start event, end event, start label title, end label title), in order.
    pub stages: Vec<StageSnapshot>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StageSnapshot {
    pub name: String,
    pub custom: bool,
    pub start_event: String,
    pub end_event: String,
    pub start_label: Option<String>,
    pub end_label: Option<String>,
}

impl FakeGitlab {
    /// The value streams saved for a project (`acme/platform`) or a group (`acme`).
    pub fn value_streams(&self, namespace: &str) -> Vec<ValueStreamSnapshot> {
        let st = lock(&self.state);
        let owner = match st.project_index(namespace) {
            Some(pi) => Owner::Project(pi),
            None => Owner::Group(super::milestones::group_index_or_panic(&st, namespace)),
        };
        let title = |id: Option<u64>| {
            id.and_then(|id| st.label_by_id(id))
                .map(|(l, _)| l.name.clone())
        };
        let streams = st
            .planning
            .value_streams
            .iter()
            .filter(|v| v.namespace == owner);
        streams
            .map(|v| ValueStreamSnapshot {
                id: format!("{STREAM_GID}{}", v.id),
                name: v.name.clone(),
                stages: v
                    .stages
                    .iter()
                    .map(|s| StageSnapshot {
                        name: s.name.clone(),
                        custom: s.custom,
                        start_event: s.start.clone(),
                        end_event: s.end.clone(),
                        start_label: title(s.start_label),
                        end_label: title(s.end_label),
                    })
                    .collect(),
            })
            .collect()
    }
}
