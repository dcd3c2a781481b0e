/** The CLI's usage text. */
export const HELP = `valkeyrie — one command line for every key/value store

Usage: valkeyrie [options] <command> [arguments]

Commands:
  get KEY                 print the value of KEY (exit 1 if absent)
  put KEY VALUE           write VALUE at KEY (VALUE "-" reads standard input);
                          --if-absent or --if-index N: only if KEY is absent,
                          or still at index N (exit 6 if not)
  incr KEY [DELTA]        add DELTA (default 1) to the counter at KEY, print it
  txn                     apply the steps read from standard input all together
                          or not at all, one per line: check KEY INDEX|absent,
                          put KEY VALUE, put-ttl KEY MS VALUE, delete KEY,
                          incr KEY [DELTA] (exit 6 if a check fails)
  rm KEY                  delete KEY; with -r, KEY and everything under it
  ls [PREFIX]             list the keys under PREFIX with their values, a page
                          at a time (--limit N, --keys-only, --reverse)
  watch KEY               print KEY's value now and after every change
  watch-tree [PREFIX]     print the tree under PREFIX now and after every change
  watch-events [PREFIX]   print the tree as puts, "synced", then one line per
                          change; --from INDEX resumes after INDEX
  lock KEY -- CMD [ARGS]  hold the lock on KEY while CMD runs (it gets the
                          fencing token in $VALKEYRIE_LOCK_TOKEN); --try
                          gives up at once if held, --timeout MS after MS
  elect NAME VALUE -- CMD [ARGS]
                          run CMD while leader of NAME (VALUE at NAME for the
                          followers; the term's token in $VALKEYRIE_LOCK_TOKEN)
  members NAME            print the members of group NAME now and after every
                          change
  dump [PREFIX]           write the tree as NDJSON lines (key, base64 value,
                          remaining ttl) to standard output
  restore                 write the keys of a dump read from standard input
  copy [PREFIX] --to URL  copy the tree from --from URL (default: the store) to
                          URL, TTLs included; --follow keeps mirroring changes
                          until Ctrl-C
  verify                  check every page of a file: store (exit 3 if damaged)
  completion SHELL        print a completion script for bash, zsh or fish
  help [COMMAND]          print this text, or one command's

Options:
  -s, --store URL         the store (default: $VALKEYRIE_STORE, else the embedded
                          file store ./valkeyrie.db); memory:, file:PATH,
                          redis://, etcd://, consul://, zk://, dynamodb://TABLE
      --prefix P          work inside the namespace P
      --ttl MS            put, incr: expire the key after MS milliseconds;
                          lock: the lock's TTL (default 20000)
      --value V           lock: the value written at KEY while held
      --try               lock: exit 5 at once if the lock is held
      --timeout MS        lock: exit 5 if not taken within MS milliseconds
  -r, --recursive         rm: delete the whole tree
      --limit N           ls: at most N keys
      --keys-only         ls: keys without values
      --reverse           ls: in descending key order
      --if-absent         put: only if KEY does not exist
      --if-index N        put: only if KEY is still at index N
      --from INDEX        watch-events: resume after INDEX (a synced index);
                          copy: the source store's URL
      --to URL            copy: the target store
      --follow            copy: keep copying live changes until stopped
      --json              print JSON (one document per line for watches)
      --connect-timeout MS  give up on an unreachable server after MS
  -h, --help              print this text (with a command: its help)
  -V, --version           print the version

Values that start with "-" go after "--": valkeyrie put n -- -5.

Exit codes: 0 done, 1 not found, 2 usage, 3 store error, 4 lock lost,
5 lock held (--try, --timeout), 6 conflict (put --if-*, txn), 130
interrupted; lock exits with its command's code. With --json, errors are
JSON objects on standard error: {"error":{"code":...,"message":...}}.
`;
