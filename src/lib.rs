//! jira-gitlab-reconciler: a polling reconciler that makes a GitLab project's issues agree with
//! a Jira project's, so GitLab's Value Stream Analytics measures work planned in Jira.
//!
//! Layout (one reason to change per module):
//! - `cli` parses the command line; `config` loads and validates TOML; `service` schedules
//!   passes, handles signals, serves metrics; `check` and `demo` are commands of their own.
//! - `reconcile` runs a pass for one mapping: read Jira and GitLab, `plan`, apply, checkpoint.
//! - `plan` is pure: (Jira issues, mirrors, GitLab issues) → actions. `domain` holds the rules
//!   for titles, states and the description marker.
//! - `jira` and `gitlab` are HTTP clients on the shared `http` layer (auth, retries, errors).
//! - `store` owns the SQLite state; `lock` keeps one pass per state database at a time.
//! - `sim` holds the stateful fake Jira and GitLab servers used by `demo` and the tests.

pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod gitlab;
pub mod health;
pub mod http;
pub mod jira;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod reconcile;
pub mod rng;
pub mod schedule;
pub mod secret;
pub mod service;
pub mod sim;
pub mod store;

/// Lock a mutex, recovering from poisoning: a panic elsewhere must not take the metrics or a
/// fake server down with it.
pub fn lock_unpoisoned<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
