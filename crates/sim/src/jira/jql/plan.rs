//! JQL over the planning fields: `assignee` (accountId on Cloud, username/key on Data Center,
//! or e-mail), `component`, `priority`, `duedate`/`due` (a day in the account's zone; `<`,
//! `>=`... work), `fixVersion` and `sprint` (a name or an id). Values that name nothing are
//! errors, as in Jira. Functions (`openSprints()`, `currentUser()`) are not supported.

use super::{invalid_date, parse_date, Env, Field, JqlError, Literal, Row, Val};

pub(super) fn compile(field: Field, name: &str, lit: &Literal, env: &Env) -> Result<Val, JqlError> {
    let text = &lit.text;
    let no_such_value = || {
        JqlError(format!(
            "The value '{text}' does not exist for the field '{name}'."
        ))
    };
    let ids = |ids: Vec<u64>| Some(Val::Ids(ids.clone())).filter(|_| !ids.is_empty());
    match field {
        Field::Assignee => env.catalog.user_number(text).map(|n| Val::Ids(vec![n])),
        Field::Component => env
            .catalog
            .component_exists(text)
            .then(|| Val::Text(text.to_lowercase())),
        Field::Priority => env
            .catalog
            .priority_exists(text)
            .then(|| Val::Text(text.to_lowercase())),
        Field::FixVersion => ids(env.catalog.version_ids(text)),
        Field::Sprint => ids(env.catalog.sprint_ids(text)),
        Field::DueDate => {
            let t = parse_date(lit, env).ok_or_else(|| invalid_date(text, name))?;
            Some(Val::Day(t.with_timezone(&env.offset).date_naive()))
        }
        _ => None,
    }
    .ok_or_else(no_such_value)
}

pub(super) fn is_empty(field: Field, row: &Row) -> bool {
    let p = row.plan;
    match field {
        Field::Assignee => p.assignee.is_none(),
        Field::Component => p.components.is_empty(),
        Field::Priority => p.priority.is_none(),
        Field::DueDate => p.due.is_none(),
        Field::FixVersion => p.fix_versions.is_empty(),
        Field::Sprint => p.sprints.is_empty(),
        _ => false,
    }
}

pub(super) fn equals(field: Field, v: &Val, row: &Row) -> bool {
    let p = row.plan;
    let lower_eq = |s: &str, t: &str| s.to_lowercase() == t;
    match (field, v) {
        (Field::Assignee, Val::Ids(ids)) => p.assignee.is_some_and(|a| ids.contains(&a)),
        (Field::Component, Val::Text(t)) => p.components.iter().any(|c| lower_eq(c, t)),
        (Field::Priority, Val::Text(t)) => p.priority.as_deref().is_some_and(|x| lower_eq(x, t)),
        (Field::FixVersion, Val::Ids(ids)) => p.fix_versions.iter().any(|x| ids.contains(x)),
        (Field::Sprint, Val::Ids(ids)) => p.sprints.iter().any(|x| ids.contains(x)),
        (Field::DueDate, Val::Day(d)) => p.due == Some(*d),
        _ => false,
    }
}
