// `wdp port add` says what it needs before asking the daemon: -f FILE, or --name, --type and
// --ifname; a file it cannot read or parse is named, as `wdp apply` names it.
import test from 'ava';
import { runWdp } from './lib/wdp-cli.js';

const NOWHERE = 'http://127.0.0.1:9'; // nothing listens: these must fail before any request

test('port add without -f or the required flags names what is missing', async (t) => {
  const none = await runWdp(['port', 'add'], NOWHERE);
  t.is(none.code, 1);
  t.is(none.stderr, 'error: port add needs -f PORT.yaml, or --name, --type and --ifname (missing: --name, --type, --ifname)\n');
  const some = await runWdp(['port', 'add', '--name', 'pod-x', '--ifname', 'veth1'], NOWHERE);
  t.is(some.stderr, 'error: port add needs -f PORT.yaml, or --name, --type and --ifname (missing: --type)\n');
  const both = await runWdp(['port', 'add', '-f', 'x.yaml', '--name', 'pod-x'], NOWHERE);
  t.is(both.stderr, 'error: port add takes -f PORT.yaml or the port flags, not both\n');
});

test('port add -f: an unreadable or unparsable file is named', async (t) => {
  const missing = await runWdp(['port', 'add', '-f', '/nonexistent/port.yaml'], NOWHERE);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'error: cannot read /nonexistent/port.yaml: ENOENT\n');
  const bad = await runWdp(['port', 'add', '-f', 'package.json', '--output', 'json'], NOWHERE);
  t.is(bad.code, 1); // JSON is YAML: it parses, then the daemon is not reached
  t.regex(bad.stderr, /^error: cannot reach the wdp API/m);
  const list = await runWdp(['port', 'add', '-f', 'examples/'], NOWHERE);
  t.regex(list.stderr, /^error: cannot read examples\/: EISDIR$/m);
});
