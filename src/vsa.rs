//! `vsa setup`: the value stream GitLab Premium and Ultimate can measure the Jira workflow
//! with, made through GitLab's GraphQL API instead of clicking it together (the Automation
//! recipe's "Configure stages" step): a stage per Jira status from "its status label was
//! added" to "that label was removed", and "Lead time" from "issue created" to "issue
//! closed" (see `vsa/stages.rs` for the stage list and what an update keeps).
//!
//! Per mapping with `status_labels`: the GitLab project and the token's role (Reporter or
//! higher manages value streams); the stream of that name, if any; whether the tier allows
//! value streams at all, asked without writing (on Free nothing is written, not even a label);
//! the Jira statuses in workflow order (`jira/workflow.rs`); the status labels the stages need,
//! created where missing as a pass would create them; then one create or update. Nothing to
//! add: nothing is written. `--dry-run` prints the plan and writes nothing.

mod labels;
mod stages;

use crate::config::{Config, Mapping};
use crate::domain::StatusCategory;
use crate::error::{Error, Result};
use crate::gitlab::{
    GitlabClient, GitlabGraphql, GraphqlError, Project, StreamNamespace, ValueStream, REPORTER,
};
use crate::http::ClientOptions;
use crate::jira::{JiraClient, Workflow};

use stages::{Plan, Planned, StatusStage};
pub use stages::{DEFAULT_STAGES, MAX_STAGES};

/// What `vsa setup` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The stream's name; default [`default_name`].
    pub name: Option<String>,
    /// In the project's group rather than the project.
    pub group: bool,
    pub dry_run: bool,
    /// Only this mapping (as `status` names it); default: every mapping with status_labels.
    pub mapping: Option<String>,
}

/// The value stream `vsa setup` makes for a mapping unless told another name.
pub fn default_name(m: &Mapping) -> String {
    format!("Jira workflow ({})", m.jira_project)
}

struct Clients {
    jira: JiraClient,
    gitlab: GitlabClient,
    graphql: GitlabGraphql,
}

/// `vsa setup`; the exit code is 0 when every selected mapping's stream is as wanted.
pub async fn run(cfg: &Config, req: &Request) -> Result<i32> {
    let mappings = selected(cfg, req)?;
    let stop = crate::stop::Stop::new();
    let (jira, gitlab) = cfg.clients(None, &stop)?;
    let https = cfg.gitlab.url.starts_with("https:");
    let opts = ClientOptions::new(cfg.retry.clone(), 4, stop, None, https)?;
    let graphql = GitlabGraphql::new(&cfg.gitlab.url, cfg.gitlab.token.clone(), &opts);
    let clients = Clients {
        jira,
        gitlab,
        graphql,
    };
    for m in mappings {
        let code = setup(&clients, m, req).await?;
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

/// The mappings to set up: the one named, or every one with status_labels.
fn selected<'a>(cfg: &'a Config, req: &Request) -> Result<Vec<&'a Mapping>> {
    let names = || {
        let all: Vec<String> = cfg.mappings.iter().map(Mapping::name).collect();
        all.join(", ")
    };
    let chosen: Vec<&Mapping> = match &req.mapping {
        Some(name) => {
            let want = Mapping::normalise_name(name);
            let found: Vec<&Mapping> = cfg.mappings.iter().filter(|m| m.name() == want).collect();
            if found.is_empty() {
                return Err(Error::Config(format!(
                    "no mapping is named {want:?}; the mappings are: {}",
                    names()
                )));
            }
            found
        }
        None => cfg
            .mappings
            .iter()
            .filter(|m| m.status_labels.is_some())
            .collect(),
    };
    if chosen.is_empty() || chosen.iter().any(|m| m.status_labels.is_none()) {
        let which = match chosen.first() {
            Some(m) => format!("{} has none", m.name()),
            None => "no mapping has them".into(),
        };
        return Err(Error::Config(format!(
            "vsa setup measures the time in each Jira status with the status labels, and \
             {which}: add status_labels = \"jira-status\" to the mapping and run `reconcile \
             --full` once, so every mirror carries its status's label"
        )));
    }
    if req.name.is_some() && chosen.len() > 1 {
        return Err(Error::Config(format!(
            "--name names one value stream, and {} mappings have status_labels ({}): choose one \
             with --mapping",
            chosen.len(),
            names()
        )));
    }
    Ok(chosen)
}

/// Set up one mapping's stream; the exit code.
async fn setup(c: &Clients, m: &Mapping, req: &Request) -> Result<i32> {
    let scope = m.status_labels.as_deref().unwrap_or_default();
    let project = c.gitlab.project(&m.gitlab_project).await?;
    let ns = namespace(&project, req.group)?;
    let name = req.name.clone().unwrap_or_else(|| default_name(m));
    let streams = c.graphql.value_streams(ns).await.map_err(graphql)?;
    let existing = streams.into_iter().find(|v| v.name == name);
    if existing.is_none() {
        if let Err(e) = c.graphql.may_manage_value_streams(ns).await {
            return refused(e, ns);
        }
    }
    let workflow = c.jira.workflow(&m.jira_project).await?;
    let statuses = status_stages(&workflow, scope);
    if statuses.is_empty() {
        return Err(Error::Config(format!(
            "Jira project {} has no status before Done to measure",
            m.jira_project
        )));
    }
    let plan = stages::plan(existing.as_ref(), &statuses).map_err(Error::Config)?;
    print_plan(ns, &name, &workflow, &plan);
    let (stages, id) = match plan {
        Plan::UpToDate => {
            println!("up to date: nothing to change");
            return Ok(0);
        }
        Plan::Create { stages, .. } => (stages, None),
        Plan::Update { stages, id } => (stages, Some(id)),
    };
    let labels = labels::Needed::new(&stages, &workflow, scope);
    let ids = labels.ensure(c, &project, ns, req.dry_run).await?;
    if req.dry_run {
        println!("dry run: nothing written");
        return Ok(0);
    }
    let inputs = labels::inputs(&stages, &ids)?;
    let outcome = match &id {
        None => c.graphql.create_value_stream(ns, &name, &inputs).await,
        Some(id) => c.graphql.update_value_stream(id, &inputs).await,
    };
    match outcome {
        Ok(Ok(stream)) => Ok(saved(&stream, ns, id.is_none())),
        Ok(Err(errors)) => Err(Error::Config(format!(
            "GitLab refused value stream {name:?} in {}: {}",
            ns.path(),
            errors.join("; ")
        ))),
        Err(e) => refused(e, ns),
    }
}

/// Where the stream goes, once the token's role there allows it.
fn namespace(project: &Project, group: bool) -> Result<StreamNamespace<'_>> {
    let Some(group_path) = project.group.as_deref() else {
        return Err(Error::Config(format!(
            "{} is not in a group: GitLab keeps value streams for groups and the projects in \
             them only; move the project into a group",
            project.path
        )));
    };
    let (ns, level) = if group {
        (
            StreamNamespace::Group(group_path),
            project.group_access_level,
        )
    } else {
        (
            StreamNamespace::Project(&project.path),
            project.access_level,
        )
    };
    if level < REPORTER {
        return Err(Error::RoleTooLow(format!(
            "managing value streams in {} needs the Reporter role or higher, and the token's \
             role there is {}: raise it (or use a token of someone who has it)",
            ns.path(),
            role_name(level)
        )));
    }
    Ok(ns)
}

fn role_name(level: u32) -> &'static str {
    match level {
        0..10 => "none",
        10..15 => "Guest",
        15..20 => "Planner",
        20..30 => "Reporter",
        30..40 => "Developer",
        40..50 => "Maintainer",
        _ => "Owner",
    }
}

/// The statuses that get a stage, in workflow order: all but Done's (an issue that reaches
/// Done is closed, which ends Lead time).
fn status_stages(workflow: &Workflow, scope: &str) -> Vec<StatusStage> {
    workflow
        .statuses
        .iter()
        .filter(|s| s.category != StatusCategory::Done)
        .map(|s| StatusStage {
            status: s.name.clone(),
            label: crate::domain::status_label(scope, &s.name),
        })
        .collect()
}

fn graphql(e: GraphqlError) -> Error {
    match e {
        GraphqlError::Api(e) => Error::Api(e),
        refused => Error::Config(format!(
            "{refused}; vsa setup needs GitLab Premium or Ultimate, 17.0 or later (value stream \
             stages with their ids and labels)"
        )),
    }
}

/// GitLab would not let the token manage value streams: the request's own failure, or (a
/// refusal) what the tier allows instead, with exit code 2.
fn refused(e: GraphqlError, ns: StreamNamespace<'_>) -> Result<i32> {
    if let GraphqlError::Api(e) = e {
        return Err(Error::Api(e));
    }
    crate::logging::error_line(&format!(
        "GitLab does not let this token manage value streams in {path} ({e}). The token has the \
         Reporter role or higher there and the project is in a group, so this GitLab's tier is Free: \
         custom value streams are a GitLab Premium and Ultimate feature. What Free allows: \
         GitLab's default value stream (Issue, Plan, Code, Test, Review, Staging), whose Plan \
         stage ends at the first commit that mentions a mirror (`ref` and the prepare-commit-msg \
         hook write those mentions), and `report`, which prints lead time and the time in each \
         Jira status from the state database.",
        path = ns.path()
    ));
    Ok(2)
}

fn print_plan(ns: StreamNamespace<'_>, name: &str, workflow: &Workflow, plan: &Plan) {
    let (what, stages, left_out) = match plan {
        Plan::UpToDate => ("has a stage for every status", &[][..], &[][..]),
        Plan::Create { stages, left_out } => ("create", &stages[..], &left_out[..]),
        Plan::Update { stages, .. } => ("add stages", &stages[..], &[][..]),
    };
    println!("value stream {name:?} in {}: {what}", ns.path());
    println!(
        "  Jira statuses in the order of {}",
        workflow.order.describe()
    );
    for stage in stages {
        let mark = if stage.is_new() { "+" } else { " " };
        println!("  {mark} {:<24} {}", stage.name(), explain(stage));
    }
    if !left_out.is_empty() {
        println!(
            "  GitLab's built-in stages {} are left out: a value stream holds at most {MAX_STAGES} \
             stages, and the Jira statuses come first",
            left_out.join(", ")
        );
    }
}

fn explain(stage: &Planned) -> String {
    match stage {
        Planned::Keep { .. } => "(kept as it is)".into(),
        Planned::Default { .. } => "GitLab's built-in stage".into(),
        Planned::Status { label, .. } => format!("label {label} added → removed"),
        Planned::LeadTime { .. } => "issue created → closed".into(),
    }
}

fn saved(stream: &ValueStream, ns: StreamNamespace<'_>, created: bool) -> i32 {
    println!(
        "{} value stream {:?} in {} ({} stages): in GitLab, Analyze → Value stream analytics, \
         then choose it from the list of value streams",
        if created { "created" } else { "updated" },
        stream.name,
        ns.path(),
        stream.stages.len()
    );
    0
}
