// A child process's end as a test reads it: 'exit' can come before the last of its output has
// been read from its stdout/stderr pipes, so a test that reads what it printed on 'exit' can see
// it cut short. 'close' comes once the pipes are drained too — unless a process the child started
// still holds them, so past `graceMs` after the exit it resolves anyway.

/** Resolves with { code, signal } once `child` has exited and its stdio is closed (or `graceMs`
 * after the exit). */
export function childDone(child, graceMs = 2000) {
  return new Promise((resolve) => {
    let exit = null;
    let timer;
    const finish = () => { clearTimeout(timer); resolve(exit); };
    child.once('close', (code, signal) => { exit ??= { code, signal }; finish(); });
    child.once('exit', (code, signal) => { exit = { code, signal }; timer = setTimeout(finish, graceMs); });
  });
}
