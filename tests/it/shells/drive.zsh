# Completes a command line in an interactive zsh (on a pseudo-terminal, zsh/zpty) with the
# completion functions in DIR, and appends every candidate zsh offers to OUT, then "<done>".
# usage: zsh -f drive.zsh DIR OUT WORD...   (an empty last WORD completes a new word)
zmodload zsh/zpty || exit 3
dir=$1 out=$2; shift 2
zpty z zsh -f -i
zpty -w z "fpath=($dir \$fpath); autoload -U compinit; compinit -u -D"
# Candidates are recorded where completion adds them; calls that only compute (-O, -A, -D)
# are passed through.
zpty -w z "compadd() { if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd \"\$@\"; return; fi; local -a hits; builtin compadd -A hits \"\$@\"; print -rl -- \$hits >> $out; builtin compadd \"\$@\"; }"
zpty -w z "_done() { print -r -- '<done>' >> $out; }; comppostfuncs=(_done)"
zpty -w -n z "$*"$'\t'
for i in {1..200}; do
  [[ -f $out ]] && grep -q '<done>' $out && break
  zpty -r -t z unused
  sleep 0.1
done
zpty -d z
