//! Value streams (GitLab Premium and Ultimate) through GraphQL: list a namespace's streams,
//! find label global ids, create and update a stream.
//!
//! - `valueStreamCreate(input: {namespacePath, name, stages})` and `valueStreamUpdate(input:
//!   {id, name, stages})` (GitLab 16.7+ for `stages`). An update **destroys every stage whose
//!   id it does not send**: callers send every stage they keep, by id.
//! - On Free (or without the Reporter role, or for a project outside any group) both answer
//!   with a top-level error; [`GitlabGraphql::may_manage_value_streams`] finds out without
//!   writing anything.
//! - Listing on Free, or before any stream is saved, shows one in-memory stream `default`
//!   (its id is not a global id): it is left out here.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::graphql::{GitlabGraphql, GraphqlError};
use crate::paging::at_most;

/// Global ids of saved value streams start with this.
const STREAM_GID: &str = "gid://gitlab/Analytics::CycleAnalytics::ValueStream/";

/// Where a value stream lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamNamespace<'a> {
    /// A project's full path (`acme/platform`).
    Project(&'a str),
    /// A group's full path (`acme`).
    Group(&'a str),
}

impl StreamNamespace<'_> {
    pub fn path(&self) -> &str {
        match self {
            StreamNamespace::Project(p) | StreamNamespace::Group(p) => p,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            StreamNamespace::Project(_) => "project",
            StreamNamespace::Group(_) => "group",
        }
    }
}

/// A saved value stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueStream {
    pub id: String,
    pub name: String,
    pub stages: Vec<StreamStage>,
}

/// A stage as GitLab shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamStage {
    pub id: String,
    pub name: String,
    pub custom: bool,
    pub start_event: String,
    pub end_event: String,
    /// The titles of the labels of label events.
    pub start_label: Option<String>,
    pub end_label: Option<String>,
}

/// An event of a new stage: its identifier (`ISSUE_LABEL_ADDED`) and, for label events, the
/// label's global id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageEvent {
    pub identifier: &'static str,
    pub label_id: Option<String>,
}

/// One stage of a create or an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageInput {
    /// A saved stage, kept as it is (updates only).
    Keep { id: String },
    /// One of GitLab's built-in stages by name (`issue`, `plan`, ...): GitLab sets its events.
    Default { name: String },
    /// A custom stage.
    Custom {
        name: String,
        start: StageEvent,
        end: StageEvent,
    },
}

impl StageInput {
    fn to_json(&self) -> Value {
        match self {
            StageInput::Keep { id } => json!({ "id": id }),
            StageInput::Default { name } => json!({ "name": name, "custom": false }),
            StageInput::Custom { name, start, end } => {
                let mut v = json!({
                    "name": name,
                    "custom": true,
                    "startEventIdentifier": start.identifier,
                    "endEventIdentifier": end.identifier,
                });
                if let Some(id) = &start.label_id {
                    v["startEventLabelId"] = json!(id);
                }
                if let Some(id) = &end.label_id {
                    v["endEventLabelId"] = json!(id);
                }
                v
            }
        }
    }
}

const STREAM_FIELDS: &str = "id name stages { id name custom startEventIdentifier \
     endEventIdentifier startEventLabel { title } endEventLabel { title } }";

impl GitlabGraphql {
    /// The namespace's saved value streams (not GitLab's in-memory `default`).
    pub async fn value_streams(
        &self,
        ns: StreamNamespace<'_>,
    ) -> Result<Vec<ValueStream>, GraphqlError> {
        let document = format!(
            "query($path: ID!) {{ {field}(fullPath: $path) {{ valueStreams {{ nodes {{ \
             {STREAM_FIELDS} }} }} }} }}",
            field = ns.field()
        );
        let data = self
            .run(
                "valueStreams",
                &document,
                json!({ "path": ns.path() }),
                false,
            )
            .await?;
        let found = &data[ns.field()];
        if found.is_null() {
            return Err(not_found(ns));
        }
        let nodes = found
            .pointer("/valueStreams/nodes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(nodes
            .iter()
            .take(at_most::ITEMS)
            .filter_map(parse_stream)
            .collect())
    }

    /// The global ids of the labels with exactly these titles that the namespace can use (its
    /// own and its ancestor groups'), one aliased field per title in one request.
    pub async fn label_ids(
        &self,
        ns: StreamNamespace<'_>,
        titles: &[String],
    ) -> Result<BTreeMap<String, String>, GraphqlError> {
        if titles.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut params = String::from("$path: ID!");
        let mut fields = String::new();
        let mut vars = Map::new();
        vars.insert("path".into(), json!(ns.path()));
        for (i, title) in titles.iter().enumerate() {
            params.push_str(&format!(", $t{i}: String"));
            fields.push_str(&format!(
                " l{i}: labels(searchTerm: $t{i}, includeAncestorGroups: true) {{ nodes {{ id title }} }}"
            ));
            vars.insert(format!("t{i}"), json!(title));
        }
        let document = format!(
            "query({params}) {{ {field}(fullPath: $path) {{{fields} }} }}",
            field = ns.field()
        );
        let data = self
            .run("labels", &document, Value::Object(vars), false)
            .await?;
        let found = &data[ns.field()];
        if found.is_null() {
            return Err(not_found(ns));
        }
        let mut out = BTreeMap::new();
        for (i, title) in titles.iter().enumerate() {
            let nodes = found[format!("l{i}")]["nodes"].as_array();
            let exact = nodes.into_iter().flatten().find(|n| n["title"] == *title);
            if let Some(id) = exact.and_then(|n| n["id"].as_str()) {
                out.insert(title.clone(), id.to_string());
            }
        }
        Ok(out)
    }

    /// Whether this token may create value streams in the namespace (the tier and the role),
    /// asked without writing: a create with an empty name, which GitLab authorises first and
    /// then refuses as invalid. `Err(Refused)` says why not.
    pub async fn may_manage_value_streams(
        &self,
        ns: StreamNamespace<'_>,
    ) -> Result<(), GraphqlError> {
        let input = json!({ "namespacePath": ns.path(), "name": "" });
        self.stream_mutation("valueStreamCreate", "ValueStreamCreateInput", input)
            .await
            .map(|_| ())
    }

    /// Create a stream. `Ok(Err(messages))`: GitLab refused it as invalid (nothing saved).
    pub async fn create_value_stream(
        &self,
        ns: StreamNamespace<'_>,
        name: &str,
        stages: &[StageInput],
    ) -> Result<Result<ValueStream, Vec<String>>, GraphqlError> {
        let input = json!({
            "namespacePath": ns.path(),
            "name": name,
            "stages": stages.iter().map(StageInput::to_json).collect::<Vec<_>>(),
        });
        self.stream_mutation("valueStreamCreate", "ValueStreamCreateInput", input)
            .await
    }

    /// Replace a stream's stages with `stages` (every stage not sent by id is destroyed).
    pub async fn update_value_stream(
        &self,
        id: &str,
        stages: &[StageInput],
    ) -> Result<Result<ValueStream, Vec<String>>, GraphqlError> {
        let input = json!({
            "id": id,
            "stages": stages.iter().map(StageInput::to_json).collect::<Vec<_>>(),
        });
        self.stream_mutation("valueStreamUpdate", "ValueStreamUpdateInput", input)
            .await
    }

    async fn stream_mutation(
        &self,
        field: &str,
        input_type: &str,
        input: Value,
    ) -> Result<Result<ValueStream, Vec<String>>, GraphqlError> {
        let document = format!(
            "mutation($input: {input_type}!) {{ {field}(input: $input) {{ valueStream {{ \
             {STREAM_FIELDS} }} errors }} }}"
        );
        let data = self
            .run(field, &document, json!({ "input": input }), true)
            .await?;
        let payload = &data[field];
        let errors: Vec<String> = payload["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
            .filter_map(Value::as_str)
            .map(|e| crate::safe_text::safe_within(e, 500))
            .collect();
        match parse_stream(&payload["valueStream"]) {
            Some(stream) if errors.is_empty() => Ok(Ok(stream)),
            _ if errors.is_empty() => Ok(Err(vec![
                "GitLab saved nothing and said nothing".to_string()
            ])),
            _ => Ok(Err(errors)),
        }
    }
}

fn not_found(ns: StreamNamespace<'_>) -> GraphqlError {
    GraphqlError::Refused {
        what: ns.field().to_string(),
        messages: vec![format!(
            "{} {} does not exist or the token cannot see it",
            ns.field(),
            ns.path()
        )],
    }
}

fn parse_stream(v: &Value) -> Option<ValueStream> {
    let id = v["id"].as_str().filter(|id| id.starts_with(STREAM_GID))?;
    let stages = v["stages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    Some(ValueStream {
        id: id.to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        stages: stages
            .iter()
            .take(at_most::ITEMS)
            .filter_map(parse_stage)
            .collect(),
    })
}

fn parse_stage(v: &Value) -> Option<StreamStage> {
    let text = |key: &str| v[key].as_str().map(str::to_string);
    let label = |key: &str| v[key]["title"].as_str().map(str::to_string);
    Some(StreamStage {
        id: text("id")?,
        name: text("name")?,
        custom: v["custom"].as_bool().unwrap_or(true),
        start_event: text("startEventIdentifier").unwrap_or_default(),
        end_event: text("endEventIdentifier").unwrap_or_default(),
        start_label: label("startEventLabel"),
        end_label: label("endEventLabel"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_memory_default_stream_is_not_a_saved_one() {
        let default = json!({"id": "default", "name": "default", "stages": []});
        assert_eq!(parse_stream(&default), None);
        let saved = json!({"id": format!("{STREAM_GID}7"), "name": "Jira",
            "stages": [{"id": "gid://gitlab/Analytics::CycleAnalytics::StreamStage/9",
                        "name": "In Review", "custom": true,
                        "startEventIdentifier": "ISSUE_LABEL_ADDED",
                        "endEventIdentifier": "ISSUE_LABEL_REMOVED",
                        "startEventLabel": {"title": "s::In Review"},
                        "endEventLabel": {"title": "s::In Review"}},
                       {"name": "no id"}]});
        let stream = parse_stream(&saved).expect("saved");
        assert_eq!(stream.stages.len(), 1);
        assert_eq!(
            stream.stages[0].start_label.as_deref(),
            Some("s::In Review")
        );
    }

    #[test]
    fn kept_stages_send_only_their_id() {
        let keep = StageInput::Keep { id: "g/1".into() };
        assert_eq!(keep.to_json(), json!({"id": "g/1"}));
        let default = StageInput::Default {
            name: "issue".into(),
        };
        assert_eq!(default.to_json(), json!({"name": "issue", "custom": false}));
    }
}
