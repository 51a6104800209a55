//! Value stream inputs and GitLab's rules for them: the stage events, which end may follow
//! which start (FOSS and EE pairing rules), and the model validations with their messages.
//!
//! Payload error wording follows Rails' `full_messages` with `index_errors` (e.g. "Stages[2]
//! name is reserved"); the exact prefixes are UNVERIFIED against a live server — match on the
//! tail ("is reserved", "Maximum number of stages per value stream exceeded").

use serde_json::Value;

use super::super::routes::Owner;
use super::super::State;
use super::{Origin, Stage, STAGE_GID, STREAM_GID};

/// The built-in stages: (name, start event, end event).
pub(super) const DEFAULT_STAGES: [(&str, &str, &str); 6] = [
    ("issue", "ISSUE_CREATED", "ISSUE_STAGE_END"),
    (
        "plan",
        "PLAN_STAGE_START",
        "ISSUE_FIRST_MENTIONED_IN_COMMIT",
    ),
    ("code", "CODE_STAGE_START", "MERGE_REQUEST_CREATED"),
    (
        "test",
        "MERGE_REQUEST_LAST_BUILD_STARTED",
        "MERGE_REQUEST_LAST_BUILD_FINISHED",
    ),
    ("review", "MERGE_REQUEST_CREATED", "MERGE_REQUEST_MERGED"),
    (
        "staging",
        "MERGE_REQUEST_MERGED",
        "MERGE_REQUEST_FIRST_DEPLOYED_TO_PRODUCTION",
    ),
];

const MAX_STAGES: usize = 15;
const MAX_STREAMS: usize = 50;

const ISSUE_TIMES: [&str; 6] = [
    "ISSUE_CLOSED",
    "ISSUE_FIRST_ADDED_TO_BOARD",
    "ISSUE_FIRST_ASSOCIATED_WITH_MILESTONE",
    "ISSUE_FIRST_MENTIONED_IN_COMMIT",
    "ISSUE_LAST_EDITED",
    "ISSUE_LABEL_ADDED",
];
const MR_TAIL: [&str; 4] = [
    "MERGE_REQUEST_CLOSED",
    "MERGE_REQUEST_LAST_EDITED",
    "MERGE_REQUEST_LABEL_ADDED",
    "MERGE_REQUEST_LABEL_REMOVED",
];

/// Every `ValueStreamStageEvent` of an EE instance.
const EVENTS: [&str; 21] = [
    "ISSUE_CREATED",
    "ISSUE_FIRST_MENTIONED_IN_COMMIT",
    "ISSUE_DEPLOYED_TO_PRODUCTION",
    "MERGE_REQUEST_CREATED",
    "MERGE_REQUEST_FIRST_DEPLOYED_TO_PRODUCTION",
    "MERGE_REQUEST_LAST_BUILD_FINISHED",
    "MERGE_REQUEST_LAST_BUILD_STARTED",
    "MERGE_REQUEST_MERGED",
    "CODE_STAGE_START",
    "ISSUE_STAGE_END",
    "PLAN_STAGE_START",
    "ISSUE_CLOSED",
    "ISSUE_FIRST_ADDED_TO_BOARD",
    "ISSUE_FIRST_ASSOCIATED_WITH_MILESTONE",
    "ISSUE_LAST_EDITED",
    "ISSUE_LABEL_ADDED",
    "ISSUE_LABEL_REMOVED",
    "MERGE_REQUEST_CLOSED",
    "MERGE_REQUEST_LAST_EDITED",
    "MERGE_REQUEST_LABEL_ADDED",
    "MERGE_REQUEST_LABEL_REMOVED",
];

fn label_based(event: &str) -> bool {
    event.ends_with("_LABEL_ADDED") || event.ends_with("_LABEL_REMOVED")
}

/// GitLab's pairing rules (FOSS merged with EE): whether `end` may end a stage started by `start`.
fn pair_allowed(start: &str, end: &str) -> bool {
    let issue_mid =
        |e: &str| (ISSUE_TIMES.contains(&e) || e == "ISSUE_LABEL_REMOVED") && e != start;
    let mr_after_build = |e: &str| MR_TAIL.contains(&e) || e == "MERGE_REQUEST_MERGED";
    match start {
        "PLAN_STAGE_START" => end == "ISSUE_FIRST_MENTIONED_IN_COMMIT",
        "CODE_STAGE_START" => end == "MERGE_REQUEST_CREATED",
        "ISSUE_CREATED" => {
            [
                "ISSUE_STAGE_END",
                "ISSUE_DEPLOYED_TO_PRODUCTION",
                "ISSUE_LABEL_REMOVED",
            ]
            .contains(&end)
                || ISSUE_TIMES.contains(&end)
        }
        "ISSUE_LABEL_ADDED" => {
            ["ISSUE_LABEL_ADDED", "ISSUE_LABEL_REMOVED", "ISSUE_CLOSED"].contains(&end)
        }
        "ISSUE_LABEL_REMOVED" => end == "ISSUE_CLOSED",
        "ISSUE_FIRST_ADDED_TO_BOARD"
        | "ISSUE_FIRST_ASSOCIATED_WITH_MILESTONE"
        | "ISSUE_FIRST_MENTIONED_IN_COMMIT" => issue_mid(end),
        "ISSUE_CLOSED" => [
            "ISSUE_LAST_EDITED",
            "ISSUE_LABEL_ADDED",
            "ISSUE_LABEL_REMOVED",
        ]
        .contains(&end),
        "MERGE_REQUEST_CREATED" => {
            MR_TAIL.contains(&end)
                || [
                    "MERGE_REQUEST_MERGED",
                    "MERGE_REQUEST_FIRST_DEPLOYED_TO_PRODUCTION",
                    "MERGE_REQUEST_LAST_BUILD_STARTED",
                    "MERGE_REQUEST_LAST_BUILD_FINISHED",
                ]
                .contains(&end)
        }
        "MERGE_REQUEST_LAST_BUILD_STARTED" | "MERGE_REQUEST_LAST_BUILD_FINISHED" => {
            (start == "MERGE_REQUEST_LAST_BUILD_STARTED"
                && end == "MERGE_REQUEST_LAST_BUILD_FINISHED")
                || mr_after_build(end)
                || end == "MERGE_REQUEST_FIRST_DEPLOYED_TO_PRODUCTION"
        }
        "MERGE_REQUEST_MERGED" | "MERGE_REQUEST_CLOSED" => {
            (end == "MERGE_REQUEST_FIRST_DEPLOYED_TO_PRODUCTION")
                || (MR_TAIL.contains(&end) && end != start && end != "MERGE_REQUEST_CLOSED")
                || (start == "MERGE_REQUEST_MERGED" && end == "MERGE_REQUEST_CLOSED")
        }
        "MERGE_REQUEST_FIRST_DEPLOYED_TO_PRODUCTION" => {
            MR_TAIL.contains(&end) && end != "MERGE_REQUEST_CLOSED"
        }
        "MERGE_REQUEST_LABEL_ADDED" | "MERGE_REQUEST_LABEL_REMOVED" => {
            ["MERGE_REQUEST_LABEL_ADDED", "MERGE_REQUEST_LABEL_REMOVED"].contains(&end)
        }
        _ => false,
    }
}

/// A mutation's input after GraphQL's type coercion.
#[derive(Debug, Default)]
pub(super) struct Input {
    pub(super) namespace_path: Option<String>,
    pub(super) id: Option<u64>,
    pub(super) name: Option<String>,
    pub(super) stages: Option<Vec<StageInput>>,
}

#[derive(Debug, Default)]
pub(super) struct StageInput {
    id: Option<u64>,
    name: Option<String>,
    custom: Option<bool>,
    hidden: Option<bool>,
    start: Option<String>,
    end: Option<String>,
    start_label: Option<Option<u64>>,
    end_label: Option<Option<u64>>,
}

/// A stage about to be saved (`id: None` for a new one).
#[derive(Clone, Debug)]
pub(super) struct Draft {
    pub(super) id: Option<u64>,
    pub(super) name: String,
    pub(super) custom: bool,
    pub(super) hidden: bool,
    pub(super) start: Option<String>,
    pub(super) end: Option<String>,
    pub(super) start_label: Option<u64>,
    pub(super) end_label: Option<u64>,
}

/// Reports a coercion problem in GraphQL's words.
struct Coercion<'a> {
    origin: &'a Origin,
    ty: &'static str,
}

impl Coercion<'_> {
    fn fail<T>(&self, path: &str, reason: &str) -> Result<T, String> {
        Err(match self.origin {
            Origin::Variable(v) => format!(
                "Variable ${v} of type {}! was provided invalid value{} ({reason})",
                self.ty,
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" for {path}")
                }
            ),
            Origin::Literal(field) => format!(
                "Argument 'input' on Field '{field}' has an invalid value ({reason}{}). \
                 Expected type '{}!'.",
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" at {path}")
                },
                self.ty
            ),
        })
    }

    fn string(
        &self,
        v: Option<&Value>,
        path: &str,
        required: bool,
    ) -> Result<Option<String>, String> {
        match v {
            None | Some(Value::Null) if required => {
                self.fail(path, "Expected value to not be null")
            }
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => self.fail(path, &format!("Could not coerce value {other} to String")),
        }
    }

    fn boolean(&self, v: Option<&Value>, path: &str) -> Result<Option<bool>, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => self.fail(path, &format!("Could not coerce value {other} to Boolean")),
        }
    }

    fn event(&self, v: Option<&Value>, path: &str) -> Result<Option<String>, String> {
        let Some(e) = self.string(v, path, false)? else {
            return Ok(None);
        };
        if EVENTS.contains(&e.as_str()) {
            Ok(Some(e))
        } else {
            self.fail(
                path,
                &format!("Expected \"{e}\" to be one of: {}", EVENTS.join(", ")),
            )
        }
    }

    /// A global id with one of the `kinds` prefixes; returns the number.
    fn gid(&self, v: Option<&Value>, path: &str, kinds: &[&str]) -> Result<Option<u64>, String> {
        let Some(text) = self.string(v, path, false)? else {
            return Ok(None);
        };
        let id = kinds
            .iter()
            .find_map(|k| text.strip_prefix(k))
            .and_then(|n| n.parse().ok());
        match id {
            Some(id) => Ok(Some(id)),
            None => self.fail(path, &format!("\"{text}\" is not a valid Global ID")),
        }
    }

    fn only_keys(
        &self,
        obj: &serde_json::Map<String, Value>,
        keys: &[&str],
        path: &str,
        ty: &str,
    ) -> Result<(), String> {
        match obj.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => self.fail(&join(path, k), &format!("Field is not defined on {ty}")),
            None => Ok(()),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

const LABEL_GIDS: [&str; 3] = [
    "gid://gitlab/ProjectLabel/",
    "gid://gitlab/GroupLabel/",
    "gid://gitlab/Label/",
];

/// Coerce `input` as `ValueStreamCreateInput` (`create`) or `ValueStreamUpdateInput`.
pub(super) fn coerce(input: &Value, create: bool, origin: &Origin) -> Result<Input, String> {
    let ty = if create {
        "ValueStreamCreateInput"
    } else {
        "ValueStreamUpdateInput"
    };
    let c = Coercion { origin, ty };
    let Some(obj) = input.as_object() else {
        return c.fail("", "Expected value to not be null");
    };
    let keys: &[&str] = if create {
        &[
            "namespacePath",
            "name",
            "stages",
            "setting",
            "clientMutationId",
        ]
    } else {
        &["id", "name", "stages", "setting", "clientMutationId"]
    };
    c.only_keys(obj, keys, "", ty)?;
    let stages = match obj.get("stages") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, s)| stage_input(&c, s, &format!("stages.{i}"), create))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => return c.fail("stages", &format!("Could not coerce value {other} to List")),
    };
    Ok(Input {
        namespace_path: c.string(obj.get("namespacePath"), "namespacePath", create)?,
        id: if create {
            None
        } else {
            c.gid(obj.get("id"), "id", &[STREAM_GID])?.or(Some(0))
        },
        name: c.string(obj.get("name"), "name", create)?,
        stages,
    })
}

fn stage_input(c: &Coercion, v: &Value, path: &str, create: bool) -> Result<StageInput, String> {
    let (ty, keys): (&str, &[&str]) = if create {
        ("CreateValueStreamStageInput", &STAGE_KEYS[1..])
    } else {
        ("UpdateValueStreamStageInput", &STAGE_KEYS)
    };
    let Some(obj) = v.as_object() else {
        return c.fail(path, "Expected value to not be null");
    };
    c.only_keys(obj, keys, path, ty)?;
    let at = |k: &str| join(path, k);
    let label = |k: &str| -> Result<Option<Option<u64>>, String> {
        match obj.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            some => c.gid(some, &at(k), &LABEL_GIDS).map(Some),
        }
    };
    Ok(StageInput {
        id: if create {
            None
        } else {
            c.gid(obj.get("id"), &at("id"), &[STAGE_GID])?
        },
        name: c.string(obj.get("name"), &at("name"), create)?,
        custom: c.boolean(obj.get("custom"), &at("custom"))?,
        hidden: c.boolean(obj.get("hidden"), &at("hidden"))?,
        start: c.event(obj.get("startEventIdentifier"), &at("startEventIdentifier"))?,
        end: c.event(obj.get("endEventIdentifier"), &at("endEventIdentifier"))?,
        start_label: label("startEventLabelId")?,
        end_label: label("endEventLabelId")?,
    })
}

const STAGE_KEYS: [&str; 8] = [
    "id",
    "name",
    "custom",
    "hidden",
    "startEventIdentifier",
    "endEventIdentifier",
    "startEventLabelId",
    "endEventLabelId",
];

/// The stage list an input asks for: stages with an id start from the saved one, others are
/// new (custom unless told otherwise); default stages get the built-in events.
pub(super) fn drafts(saved: &[Stage], inputs: &[StageInput]) -> Result<Vec<Draft>, String> {
    inputs
        .iter()
        .map(|input| {
            let mut d = match input.id {
                Some(id) => saved
                    .iter()
                    .find(|s| s.id == id)
                    .map(Draft::of)
                    .ok_or_else(|| {
                        format!("Couldn't find Analytics::CycleAnalytics::Stage with ID={id}")
                    })?,
                None => Draft::of(&Stage {
                    id: 0,
                    name: String::new(),
                    custom: true,
                    hidden: false,
                    start: String::new(),
                    end: String::new(),
                    start_label: None,
                    end_label: None,
                }),
            };
            d.id = input.id;
            d.name = input.name.clone().unwrap_or(d.name);
            d.custom = input.custom.unwrap_or(d.custom);
            d.hidden = input.hidden.unwrap_or(d.hidden);
            d.start = input.start.clone().or(d.start);
            d.end = input.end.clone().or(d.end);
            d.start_label = input.start_label.unwrap_or(d.start_label);
            d.end_label = input.end_label.unwrap_or(d.end_label);
            let builtin = DEFAULT_STAGES
                .iter()
                .find(|(n, ..)| *n == d.name.to_lowercase());
            if let (false, Some((_, start, end))) = (d.custom, builtin) {
                (d.start, d.end) = (Some(start.to_string()), Some(end.to_string()));
                (d.start_label, d.end_label) = (None, None);
            }
            Ok(d)
        })
        .collect()
}

impl Draft {
    fn of(s: &Stage) -> Draft {
        let nonempty = |e: &str| Some(e.to_owned()).filter(|e| !e.is_empty());
        Draft {
            id: Some(s.id),
            name: s.name.clone(),
            custom: s.custom,
            hidden: s.hidden,
            start: nonempty(&s.start),
            end: nonempty(&s.end),
            start_label: s.start_label,
            end_label: s.end_label,
        }
    }
}

/// The model validations of a stream about to be saved; empty when it may be saved.
pub(super) fn validate(
    st: &State,
    owner: Owner,
    except: Option<u64>,
    name: &str,
    drafts: &[Draft],
) -> Vec<String> {
    let mut errors = Vec::new();
    let len = name.chars().count();
    if name.trim().is_empty() {
        errors.push("Name can't be blank".to_owned());
    }
    if len < 3 {
        errors.push("Name is too short (minimum is 3 characters)".to_owned());
    } else if len > 100 {
        errors.push("Name is too long (maximum is 100 characters)".to_owned());
    }
    let others = st
        .planning
        .value_streams
        .iter()
        .filter(|v| v.namespace == owner && Some(v.id) != except);
    if others.clone().any(|v| v.name == name) {
        errors.push("Name has already been taken".to_owned());
    }
    if except.is_none() && others.count() >= MAX_STREAMS {
        errors.push("Namespace Maximum number of value streams per namespace exceeded".to_owned());
    }
    for (i, d) in drafts.iter().enumerate() {
        stage_errors(st, owner, i, d, &drafts[..i], &mut errors);
    }
    if drafts.len() > MAX_STAGES {
        errors.push(format!(
            "Stages[{MAX_STAGES}] value stream Maximum number of stages per value stream exceeded"
        ));
    }
    errors
}

fn stage_errors(
    st: &State,
    owner: Owner,
    i: usize,
    d: &Draft,
    before: &[Draft],
    out: &mut Vec<String>,
) {
    let p = format!("Stages[{i}]");
    let lower = d.name.to_lowercase();
    let builtin = DEFAULT_STAGES.iter().any(|(n, ..)| *n == lower);
    if d.name.trim().is_empty() {
        out.push(format!("{p} name can't be blank"));
    } else if d.custom && DEFAULT_STAGES.iter().any(|(n, ..)| *n == d.name) {
        out.push(format!("{p} name is reserved"));
    } else if !d.custom && !builtin {
        out.push(format!(
            "{p} name Invalid name {lower} was given for this default stage, allowed names: \
             issue, plan, code, test, review, staging"
        ));
    }
    if before.iter().any(|o| o.name == d.name) {
        out.push(format!("{p} name has already been taken"));
    }
    for (which, event, label) in [
        ("start", &d.start, d.start_label),
        ("end", &d.end, d.end_label),
    ] {
        match event {
            None => out.push(format!("{p} {which} event identifier can't be blank")),
            Some(e) if label_based(e) && label.is_none() => {
                out.push(format!("{p} {which} event label can't be blank"))
            }
            _ => {}
        }
        if label.is_some_and(|id| !label_available(st, owner, id)) {
            out.push(format!(
                "{p} {which} event label is not available for the selected group"
            ));
        }
    }
    if let (Some(s), Some(e)) = (&d.start, &d.end) {
        if !pair_allowed(s, e) {
            out.push(format!(
                "{p} end event not allowed for the given start event"
            ));
        }
    }
}

/// `label_available_for_namespace?`: for a project, the labels of its group (and the group's
/// ancestors) and of the group's projects; for a group, its and its ancestors' labels.
fn label_available(st: &State, owner: Owner, id: u64) -> bool {
    let group = match owner {
        Owner::Project(pi) => st.projects[pi].group,
        Owner::Group(gi) => Some(gi),
    };
    let Some(group) = group else {
        return false;
    };
    let in_groups = st
        .group_and_ancestors(group)
        .into_iter()
        .any(|g| st.groups[g].labels.iter().any(|l| l.id == id));
    let in_projects = matches!(owner, Owner::Project(_))
        && st
            .projects
            .iter()
            .filter(|p| p.group == Some(group))
            .any(|p| p.labels.iter().any(|l| l.id == id));
    in_groups || in_projects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_follows_gitlabs_rules() {
        assert!(pair_allowed("ISSUE_LABEL_ADDED", "ISSUE_LABEL_REMOVED"));
        assert!(pair_allowed("ISSUE_LABEL_ADDED", "ISSUE_LABEL_ADDED"));
        assert!(pair_allowed("ISSUE_LABEL_ADDED", "ISSUE_CLOSED"));
        assert!(!pair_allowed("ISSUE_LABEL_ADDED", "ISSUE_LAST_EDITED"));
        assert!(pair_allowed("ISSUE_LABEL_REMOVED", "ISSUE_CLOSED"));
        assert!(!pair_allowed("ISSUE_LABEL_REMOVED", "ISSUE_LABEL_ADDED"));
        assert!(pair_allowed("ISSUE_CREATED", "ISSUE_CLOSED"));
        assert!(pair_allowed("ISSUE_CREATED", "ISSUE_STAGE_END"));
        assert!(!pair_allowed("ISSUE_CREATED", "MERGE_REQUEST_MERGED"));
        assert!(pair_allowed(
            "ISSUE_FIRST_ADDED_TO_BOARD",
            "ISSUE_LABEL_REMOVED"
        ));
        assert!(!pair_allowed(
            "ISSUE_FIRST_ADDED_TO_BOARD",
            "ISSUE_FIRST_ADDED_TO_BOARD"
        ));
        assert!(pair_allowed(
            "PLAN_STAGE_START",
            "ISSUE_FIRST_MENTIONED_IN_COMMIT"
        ));
        assert!(pair_allowed("MERGE_REQUEST_MERGED", "MERGE_REQUEST_CLOSED"));
        assert!(!pair_allowed(
            "MERGE_REQUEST_CLOSED",
            "MERGE_REQUEST_CLOSED"
        ));
        assert!(!pair_allowed("ISSUE_CLOSED", "ISSUE_CLOSED"));
        for (_, start, end) in DEFAULT_STAGES {
            assert!(pair_allowed(start, end), "{start} → {end}");
        }
    }
}
