//! The module graph of the product crate, read from its source: every module sits in a layer
//! and uses only modules of lower layers, so there is no cycle, the HTTP layer knows no config,
//! and the planner imports nothing that does I/O. A new module must be placed here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. A module may use any module of a lower layer, none of its own or a higher one.
const LAYERS: &[&[&str]] = &[
    // Leaves: plain values and rules, no I/O of the crate's own.
    &[
        "cause", "secret", "rng", "metrics", "notify", "domain", "stop", "progress",
    ],
    // Text from servers made safe, and page chains kept finite: used by HTTP and the clients.
    &["safe_text", "paging"],
    // HTTP, the pure planner, the pure lead-time figures, and logging (which writes around a
    // progress bar).
    &["http", "plan", "leadtime", "logging"],
    // The two API clients.
    &["jira", "gitlab"],
    // The crate's error, and what reports it.
    &["error"],
    // Who could change where a path leads (root's checks of the config's and the state's paths).
    &["path_walk"],
    // `listen`: the service's HTTP listeners (limits, handed-over sockets).
    &["store", "lock", "schedule", "listen"],
    // Configuration builds the clients.
    &["config"],
    &["reconcile"],
    // `reference` (`ref`) and `vsa` (`vsa setup`) read the config and ask the servers.
    &["health", "webhook", "report", "reference", "vsa"],
    // The service's page reads the store, the report and the metrics.
    &["status_page"],
    &["check", "service"],
    // The demo ends with a report.
    &["demo"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// module → the crate modules its files name as `crate::x`.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let first = rel.components().next().expect("a component");
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source readable");
            let used = graph.entry(module.clone()).or_insert_with(BTreeSet::new);
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                for (i, _) in code.match_indices("crate::") {
                    let rest = &code[i + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    // `crate::{a, b}` groups are not used in this crate; a bare `crate::f` is a
                    // function of lib.rs, which everyone may use.
                    if !name.is_empty() && name != module && layer_of(&name).is_some() {
                        used.insert(name);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn every_module_uses_only_lower_layers() {
    let graph = uses();
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(mine) = layer_of(module) else {
            wrong.push(format!(
                "{module} is in no layer: add it to LAYERS in tests/it/layers.rs"
            ));
            continue;
        };
        for u in used {
            let theirs = layer_of(u).unwrap_or(usize::MAX);
            if theirs >= mine {
                wrong.push(format!("{module} (layer {mine}) uses {u} (layer {theirs})"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_planner_imports_nothing_that_does_io() {
    let graph = uses();
    let plan = graph.get("plan").expect("a plan module");
    assert!(plan.contains("domain"), "{plan:?}");
    for used in plan {
        assert!(
            ["domain", "rng"].contains(&used.as_str()),
            "plan must stay pure, but uses {used}"
        );
    }
}
