// A YAML mistake a person makes (a tab for indentation, an unclosed quote, a mapping indented one
// space too far) in a manifest given to `wdp apply` or in the config given to `wdp start`: one
// line that says where once (the parser's own message repeats "at line L, column C:" and then
// cuts off before its code frame) and, for a tab, what to do instead.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runWdp } from './lib/wdp-cli.js';
import { oneLine, scratch } from './lib/cli-expect.js';
import { loadConfigFile } from '../dist/src/daemon/config.js';

/** The CLI against a server that is not there (a parse error is found before any request). */
const wdp = (args) => runWdp(args, 'http://127.0.0.1:1', { killAfterMs: 60_000 });

test('apply -f of YAML with a tab, an unclosed quote: the position said once, the line not cut off mid-sentence', async (t) => {
  const dir = scratch(t, 'wdp-cli-yaml-');
  const tab = join(dir, 'tab.yaml');
  writeFileSync(tab, 'apiVersion: v1\nkind: Service\nmetadata:\n\tname: web\n');
  oneLine(t, await wdp(['apply', '-f', tab]), /^error: .*tab\.yaml: document 1: cannot parse \(line 4, column 1\): Tabs are not allowed as indentation; indent with spaces$/);
  const quote = join(dir, 'quote.yaml');
  writeFileSync(quote, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: "web\n');
  const r = await wdp(['apply', '-f', quote]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^error: .*quote\.yaml: document 1: cannot parse \(line \d+, column \d+\): Missing closing "quote$/m);
  t.notRegex(r.stderr, /at line \d+, column \d+/, 'the position only once, in front');
  t.notRegex(r.stderr, /:\n|:$/, 'no line ends with a colon (a code frame cut off)');
});

test('wdp start --config with a tab: the position said once, and what to do', (t) => {
  const dir = scratch(t, 'wdp-cli-yaml-');
  const cfg = join(dir, 'wdp.yaml');
  writeFileSync(cfg, 'node:\n\tname: node-a\nports: []\n');
  const e = t.throws(() => loadConfigFile(cfg));
  t.is(e.message, `config ${cfg}: cannot parse (line 2, column 1): Tabs are not allowed as indentation; indent with spaces (not valid YAML)`);
});
