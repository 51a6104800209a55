# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jira_gitlab_reconciler_global_optspecs
    string join \n c/config= v/verbose q/quiet h/help V/version
end

function __fish_jira_gitlab_reconciler_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_jira_gitlab_reconciler_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_jira_gitlab_reconciler_using_subcommand
    set -l cmd (__fish_jira_gitlab_reconciler_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -s V -l version -d 'Print version'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "reconcile" -d 'Run one pass over every mapping, then exit (0 when every mapping converged)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "check" -d 'Check the config, both servers, the credentials, each mapped project and the token\'s role'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "status" -d 'Show each mapping\'s checkpoint, last pass, counts, last error and lag (needs no token)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "report" -d 'Lead time and throughput per mapping and week, from the state database (no server is asked, no token needed)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "demo" -d 'Run the reconciler against built-in simulated Jira and GitLab servers (no credentials, no network) and show what it does'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "run" -d 'Run as a service: reconcile on the [schedule] until SIGTERM or SIGINT; SIGHUP reloads the config'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "webhook" -d 'Set up Jira\'s side of [webhook]: print what to paste into Jira\'s WebHooks page, or register the webhook (Jira administrators only)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "ref" -d 'Print the GitLab reference of each Jira issue\'s mirror (acme/platform#57), for commit messages: a commit that mentions an issue ends GitLab\'s Plan stage'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "vsa" -d 'GitLab Value Stream Analytics (Premium and Ultimate): set up the value stream that measures the Jira workflow'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -l lock-timeout -d 'How long to wait for another instance\'s pass to finish before giving up (exit 3)' -r
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -l dry-run -d 'Print the planned actions; write nothing to GitLab or to the state database'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -l full -d 'Ignore the checkpoint: compare every issue of each mapping with what GitLab holds, which also repairs mirrors changed by hand in GitLab'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -l json -d 'Print the report as JSON on stdout (per mapping: counts, failures, notes, checkpoint, duration); the exit code is the same as without it'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand reconcile" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand check" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand check" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand check" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand check" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand status" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand status" -l json -d 'Print JSON instead of text'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand status" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand status" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand status" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -l since -d 'Start of the window: a date (2025-01-01, UTC midnight) or an RFC 3339 time' -r
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -l until -d 'End of the window: a date (included) or an RFC 3339 time. Default: now' -r
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -l format -d 'Output format' -r -f -a "table\t''
json\t''
csv\t''"
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -l svg -d 'Also draw lead time and throughput per week into this SVG file' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -l mapping -d 'Only this mapping (as `status` names it, e.g. "VSA->acme/platform")' -r
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand report" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand demo" -l issues -d 'How many Jira issues to seed (at least 6, so every part of the story has an issue)' -r
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand demo" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand demo" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand demo" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand demo" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand run" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand run" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand run" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand run" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and not __fish_seen_subcommand_from url register help" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and not __fish_seen_subcommand_from url register help" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and not __fish_seen_subcommand_from url register help" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and not __fish_seen_subcommand_from url register help" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and not __fish_seen_subcommand_from url register help" -f -a "url" -d 'Print the URL, the events and the JQL filter for Jira\'s WebHooks admin page'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and not __fish_seen_subcommand_from url register help" -f -a "register" -d 'Register the webhook with its secret through Jira\'s admin API (POST /rest/webhooks/1.0/webhook), or update the one that already posts to this address, so running it again never makes Jira send events twice; the Jira account must be an administrator'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and not __fish_seen_subcommand_from url register help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from url" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from url" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from url" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from url" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from register" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from register" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from register" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from register" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "url" -d 'Print the URL, the events and the JQL filter for Jira\'s WebHooks admin page'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "register" -d 'Register the webhook with its secret through Jira\'s admin API (POST /rest/webhooks/1.0/webhook), or update the one that already posts to this address, so running it again never makes Jira send events twice; the Jira account must be an administrator'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand ref" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand ref" -l url -d 'Print the mirror\'s web URL instead'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand ref" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand ref" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand ref" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and not __fish_seen_subcommand_from setup help" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and not __fish_seen_subcommand_from setup help" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and not __fish_seen_subcommand_from setup help" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and not __fish_seen_subcommand_from setup help" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and not __fish_seen_subcommand_from setup help" -f -a "setup" -d 'Create or update, through GitLab\'s GraphQL API, a value stream with a stage per Jira status (its status label added → removed) and Lead time (issue created → closed); safe to run again: it only adds what is missing'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and not __fish_seen_subcommand_from setup help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -l name -d 'The value stream\'s name. Default: "Jira workflow (<Jira project>)"' -r
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -l mapping -d 'Only this mapping (as `status` names it, e.g. "VSA->acme/platform"). Default: every mapping with status_labels' -r
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -l group -d 'Make it in the project\'s group rather than the project (needs group labels)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -l dry-run -d 'Print what it would create or change; write nothing'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from setup" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from help" -f -a "setup" -d 'Create or update, through GitLab\'s GraphQL API, a value stream with a stage per Jira status (its status label added → removed) and Lead time (issue created → closed); safe to run again: it only adds what is missing'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand vsa; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand completions" -s c -l config -d 'Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then /etc/jira-gitlab-reconciler/config.toml, the first that exists' -r -F
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand completions" -s v -l verbose -d 'More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand completions" -s q -l quiet -d 'Less log output: -q warnings and errors, -qq errors only'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand completions" -s h -l help -d 'Print help'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "reconcile" -d 'Run one pass over every mapping, then exit (0 when every mapping converged)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "check" -d 'Check the config, both servers, the credentials, each mapped project and the token\'s role'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "status" -d 'Show each mapping\'s checkpoint, last pass, counts, last error and lag (needs no token)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "report" -d 'Lead time and throughput per mapping and week, from the state database (no server is asked, no token needed)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "demo" -d 'Run the reconciler against built-in simulated Jira and GitLab servers (no credentials, no network) and show what it does'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "run" -d 'Run as a service: reconcile on the [schedule] until SIGTERM or SIGINT; SIGHUP reloads the config'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "webhook" -d 'Set up Jira\'s side of [webhook]: print what to paste into Jira\'s WebHooks page, or register the webhook (Jira administrators only)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "ref" -d 'Print the GitLab reference of each Jira issue\'s mirror (acme/platform#57), for commit messages: a commit that mentions an issue ends GitLab\'s Plan stage'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "vsa" -d 'GitLab Value Stream Analytics (Premium and Ultimate): set up the value stream that measures the Jira workflow'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and not __fish_seen_subcommand_from reconcile check status report demo run webhook ref vsa completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "url" -d 'Print the URL, the events and the JQL filter for Jira\'s WebHooks admin page'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "register" -d 'Register the webhook with its secret through Jira\'s admin API (POST /rest/webhooks/1.0/webhook), or update the one that already posts to this address, so running it again never makes Jira send events twice; the Jira account must be an administrator'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand help; and __fish_seen_subcommand_from vsa" -f -a "setup" -d 'Create or update, through GitLab\'s GraphQL API, a value stream with a stage per Jira status (its status label added → removed) and Lead time (issue created → closed); safe to run again: it only adds what is missing'
complete -c jira-gitlab-reconciler -n "__fish_jira_gitlab_reconciler_using_subcommand completions" -f -a "bash elvish fish powershell zsh"
