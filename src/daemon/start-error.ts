// How `wdp start` says why it could not start, on one line: a command the start ran (`ip link
// set dev eth1 up`) failed with the tool's own multi-line text, and the usual cause — a start that
// is not root, or lacks CAP_NET_ADMIN / CAP_NET_RAW — was left for the reader to guess.

/** The start error's text as one line, with what to do when the kernel refused the permission. */
export function startErrorText(message: string, uid: number | undefined = process.getuid?.()): string {
  // child_process's "Command failed: CMD\nTOOL OUTPUT\n": the command, then what the tool said
  const failed = /^Command failed: ([^\n]*)\n([\s\S]*)$/.exec(message);
  let text = failed ? `${failed[1]}: ${failed[2].trim().replace(/\s*\n\s*/g, '; ') || 'failed'}` : message.trim().replace(/\s*\n\s*/g, '; ');
  if (/Operation not permitted|EPERM|EACCES|permission denied/i.test(text)) {
    text += uid !== undefined && uid !== 0
      ? ' (not root: run wdp start as root, e.g. sudo node bin/wdp.js start ..., or with CAP_NET_ADMIN and CAP_NET_RAW: docs/running.md "Preparing the node")'
      : ' (wdp start needs CAP_NET_ADMIN and CAP_NET_RAW, CAP_SYS_ADMIN for TAPs in other namespaces: docs/running.md "Preparing the node")';
  }
  return text;
}
