fn main() {
    std::process::exit(jira_gitlab_reconciler::cli::main());
}
