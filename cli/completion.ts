/**
 * `valkeyrie completion bash|zsh|fish`: a script that completes the
 * commands and options, to be sourced from the shell's start-up file.
 *
 * @module
 */

/** Scripts by shell. */
export function completionScript(
  shell: string,
  commands: readonly string[],
  options: readonly string[],
): string | undefined {
  const words = commands.join(" ");
  const flags = options.join(" ");
  if (shell === "bash" || shell === "zsh") {
    // zsh runs bash completions through bashcompinit.
    const zsh = shell === "zsh"
      ? "autoload -U +X bashcompinit && bashcompinit\n"
      : "";
    return `${zsh}# valkeyrie completion: source this, e.g. from ~/.${shell}rc
_valkeyrie() {
  local current="\${COMP_WORDS[COMP_CWORD]}"
  local i command=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -s|--store|--prefix|--ttl|--value|--limit|--from|--to|--timeout|--connect-timeout) ((i++)) ;;
      -*) ;;
      *) command="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ "$current" == -* ]]; then
    COMPREPLY=($(compgen -W "${flags}" -- "$current"))
  elif [[ -z "$command" ]]; then
    COMPREPLY=($(compgen -W "${words}" -- "$current"))
  elif [[ "$command" == "help" ]]; then
    COMPREPLY=($(compgen -W "${words}" -- "$current"))
  fi
}
complete -F _valkeyrie valkeyrie
`;
  }
  if (shell === "fish") {
    const lines = [
      "# valkeyrie completion: save as ~/.config/fish/completions/valkeyrie.fish",
      "complete -c valkeyrie -f",
      ...commands.map((c) =>
        `complete -c valkeyrie -n __fish_use_subcommand -a ${c}`
      ),
      ...options.map((o) => `complete -c valkeyrie -l ${o.replace(/^--/, "")}`),
    ];
    return lines.join("\n") + "\n";
  }
  return undefined;
}
