use super::*;

fn statuses(names: &[&str]) -> Vec<StatusStage> {
    names
        .iter()
        .map(|n| StatusStage {
            status: n.to_string(),
            label: format!("jira-status::{n}"),
        })
        .collect()
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

fn refs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

fn names(stages: &[Planned]) -> Vec<&str> {
    stages.iter().map(Planned::name).collect()
}

fn stage(n: usize, name: &str, events: (&str, &str), label: Option<&str>) -> StreamStage {
    StreamStage {
        id: format!("gid://gitlab/Analytics::CycleAnalytics::Stage/{n}"),
        name: name.to_string(),
        custom: true,
        start_event: events.0.into(),
        end_event: events.1.into(),
        start_label: label.map(str::to_string),
        end_label: label.map(str::to_string),
    }
}

/// What GitLab saves for a new stage.
fn saved(planned: &Planned, n: usize) -> StreamStage {
    match planned {
        Planned::Default { name } => StreamStage {
            custom: false,
            ..stage(n, name, ("ISSUE_CREATED", "ISSUE_STAGE_END"), None)
        },
        Planned::Status { name, label } => {
            stage(n, name, (LABEL_ADDED, LABEL_REMOVED), Some(label))
        }
        Planned::LeadTime { name } => stage(n, name, (ISSUE_CREATED, ISSUE_CLOSED), None),
        Planned::Keep { .. } => panic!("not a new stage"),
    }
}

/// The stream GitLab would hold after `plan` was created.
fn created(plan: &Plan) -> ValueStream {
    let Plan::Create { stages, .. } = plan else {
        panic!("a create: {plan:?}");
    };
    ValueStream {
        id: "gid://gitlab/Analytics::CycleAnalytics::ValueStream/1".into(),
        name: "Jira workflow (VSA)".into(),
        stages: stages
            .iter()
            .enumerate()
            .map(|(n, s)| saved(s, n))
            .collect(),
    }
}

#[test]
fn a_new_stream_has_the_builtin_stages_then_one_per_status_then_lead_time() {
    let plan = plan(None, &statuses(&["To Do", "In Progress", "In Review"])).expect("fits");
    let Plan::Create { stages, left_out } = &plan else {
        panic!("{plan:?}");
    };
    let mut want = DEFAULT_STAGES.to_vec();
    want.extend(["To Do", "In Progress", "In Review", "Lead time"]);
    assert_eq!(names(stages), want);
    assert!(left_out.is_empty());
    assert_eq!(
        stages[7],
        Planned::Status {
            name: "In Progress".into(),
            label: "jira-status::In Progress".into()
        }
    );
}

#[test]
fn statuses_come_before_builtin_stages_when_room_runs_out() {
    let twelve = numbered("Step ", 12);
    let Plan::Create { stages, left_out } = plan(None, &statuses(&refs(&twelve))).expect("fits")
    else {
        panic!("a create");
    };
    assert_eq!(stages.len(), MAX_STAGES);
    assert_eq!(names(&stages)[..2], ["issue", "plan"]);
    assert_eq!(left_out, ["code", "test", "review", "staging"]);
    assert!(plan(None, &statuses(&refs(&numbered("S", 14)))).is_ok());
    let e = plan(None, &statuses(&refs(&numbered("S", 15)))).expect_err("too many");
    assert!(e.contains("15 statuses before Done"), "{e}");
}

#[test]
fn reserved_and_taken_names_get_a_prefix() {
    let Plan::Create { stages, .. } =
        plan(None, &statuses(&["Review", "test", "Lead Time", "QA"])).expect("fits")
    else {
        panic!("a create");
    };
    assert_eq!(
        names(&stages)[6..],
        [
            "Jira: Review",
            "Jira: test",
            "Jira: Lead Time",
            "QA",
            "Lead time"
        ]
    );
}

#[test]
fn running_it_again_changes_nothing() {
    let wanted = statuses(&["To Do", "In Progress"]);
    let stream = created(&plan(None, &wanted).expect("fits"));
    assert_eq!(plan(Some(&stream), &wanted), Ok(Plan::UpToDate));
}

#[test]
fn an_update_sends_every_stage_back_by_id_and_adds_the_new_status_in_order() {
    let mut stream = created(&plan(None, &statuses(&["To Do", "In Review"])).expect("fits"));
    // Someone added a stage of their own, and removed a built-in one.
    stream.stages.retain(|s| s.name != "staging");
    let theirs = stage(
        99,
        "Waiting for deploy",
        ("ISSUE_FIRST_MENTIONED_IN_COMMIT", ISSUE_CLOSED),
        None,
    );
    stream.stages.insert(2, theirs);
    let wanted = statuses(&["To Do", "In Progress", "In Review"]);
    let Plan::Update { id, stages } = plan(Some(&stream), &wanted).expect("fits") else {
        panic!("an update");
    };
    assert_eq!(id, stream.id);
    assert_eq!(
        names(&stages),
        [
            "issue",
            "plan",
            "code",
            "test",
            "review",
            "To Do",
            "In Progress",
            "In Review",
            "Lead time",
            "Waiting for deploy"
        ]
    );
    let new: Vec<&str> = stages
        .iter()
        .filter(|s| s.is_new())
        .map(Planned::name)
        .collect();
    assert_eq!(new, ["In Progress"]);
    // Every stage the stream had is sent back by id, so the update destroys none of them.
    for s in &stream.stages {
        let kept = Planned::Keep {
            id: s.id.clone(),
            name: s.name.clone(),
        };
        assert!(stages.contains(&kept), "{} kept", s.name);
    }
}

#[test]
fn a_status_that_left_the_workflow_keeps_its_stage() {
    let stream = created(&plan(None, &statuses(&["To Do", "Old"])).expect("fits"));
    assert_eq!(
        plan(Some(&stream), &statuses(&["To Do"])),
        Ok(Plan::UpToDate)
    );
    let Plan::Update { stages, .. } =
        plan(Some(&stream), &statuses(&["To Do", "New"])).expect("fits")
    else {
        panic!("an update");
    };
    assert!(names(&stages).contains(&"Old"));
}

#[test]
fn an_update_that_would_not_fit_says_what_to_remove() {
    let eight = numbered("S", 8);
    let stream = created(&plan(None, &statuses(&refs(&eight))).expect("fits"));
    assert_eq!(stream.stages.len(), MAX_STAGES);
    let nine = numbered("S", 9);
    let e = plan(Some(&stream), &statuses(&refs(&nine))).expect_err("no room");
    assert!(e.contains("adding 1 (S9) would make 16"), "{e}");
}

#[test]
fn a_new_stage_does_not_take_the_name_of_someone_elses() {
    let mut stream = created(&plan(None, &statuses(&["To Do"])).expect("fits"));
    let theirs = stage(77, "QA", (ISSUE_CREATED, "ISSUE_LAST_EDITED"), None);
    stream.stages.push(theirs);
    let Plan::Update { stages, .. } =
        plan(Some(&stream), &statuses(&["To Do", "QA"])).expect("fits")
    else {
        panic!("an update");
    };
    assert!(names(&stages).contains(&"Jira: QA"), "{:?}", names(&stages));
}
