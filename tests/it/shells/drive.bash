# Completes a command line with the bash completion script SCRIPT, as bash does on <TAB>:
# the function `complete -p` names for the command gets COMP_WORDS/COMP_CWORD and the
# command, current and previous words; prints COMPREPLY, one candidate a line.
# usage: bash drive.bash SCRIPT WORD...   (an empty last WORD completes a new word)
source "$1" || exit 3
shift
spec=$(complete -p "$1") || exit 4
fn=${spec##*-F }
fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
