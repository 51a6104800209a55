//! Integration tests: the reconciler against the stateful fake Jira and GitLab servers on
//! 127.0.0.1, a real SQLite file, and (in `process`) the real binary. One test binary keeps
//! link time down.

mod bad_input;
mod browser;
mod commit_refs;
mod crash;
mod dashboards;
mod deleted;
mod e2e;
mod faults;
mod fields;
mod first_hour;
mod harness;
mod hostile;
mod layers;
mod listeners;
mod milestones;
mod operate;
mod package;
mod panics;
mod process;
mod recipe;
mod report;
mod root;
mod service;
mod shape;
mod shells;
mod speed;
mod status_board;
mod status_labels;
mod status_page;
mod vsa_setup;
mod webhook;
