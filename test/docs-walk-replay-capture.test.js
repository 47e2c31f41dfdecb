// A docs recipe that captures a file and replays it captures `--direction in`: `wdp replay` runs
// frames as arrived on the port, and skips (and says so) those the dataplane sent, so README's
// "Using it" pair (`capture ... -w in.pcap`, default direction both, then `replay in.pcap`) replayed
// only part of what it captured and ended with "capture with --direction in to replay what arrived".
import test from 'ava';
import { readFileSync } from 'node:fs';

const ROOT = new URL('../', import.meta.url);

test('every capture a docs recipe replays is taken with --direction in', (t) => {
  let pairs = 0;
  for (const doc of ['README.md', 'docs/observe.md', 'docs/running.md', 'docs/api.md']) {
    const lines = readFileSync(new URL(doc, ROOT), 'utf8').split('\n');
    const captures = new Map();
    for (const raw of lines) {
      const line = raw.replace(/\s#\s.*$/, '');
      const cap = /\bwdp(?:\.js)? capture\b.*\s-w\s+(\S+\.pcap)/.exec(line);
      if (cap) captures.set(cap[1], line);
      const rep = /\bwdp(?:\.js)? replay\s+(\S+\.pcap)/.exec(line);
      if (rep && captures.has(rep[1])) {
        pairs++;
        t.regex(captures.get(rep[1]), /--direction in\b/, `${doc}: \`${captures.get(rep[1]).trim()}\` is replayed by \`${line.trim()}\``);
      }
    }
  }
  t.true(pairs >= 2, `the README and observe.md recipes were found (${pairs})`);
});
