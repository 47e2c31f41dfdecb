// A misspelt flag or command gets the same "did you mean ...?" a config file's misspelt key gets
// (src/util/suggest.ts, through src/util/cli-hints.ts), on the error line, in place of commander's
// own hint ("(Did you mean --config?)" on a line of its own, another distance rule). A misspelt
// `wdp get` resource too.
import test from 'ava';
import { spawnSync } from 'node:child_process';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const run = (args) => spawnSync(process.execPath, [WDP, ...args, '--server', 'http://127.0.0.1:9'], { encoding: 'utf8', timeout: 60_000 });

const cases = [
  [['get', 'services', '--namspace', 'x'], "error: unknown option '--namspace' (did you mean \"--namespace\"?)\n(run 'wdp help get' for usage)\n"],
  [['apply', '--dryrun', '-f', 'x'], "error: unknown option '--dryrun' (did you mean \"--dry-run\"?)\n(run 'wdp help apply' for usage)\n"],
  [['get', 'svc', '--servr=x'], "error: unknown option '--servr=x' (did you mean \"--server\"?)\n(run 'wdp help get' for usage)\n"],
  [['demo', '--round', '2'], "error: unknown option '--round' (did you mean \"--rounds\"?)\n(run 'wdp help demo' for usage)\n"],
  [['strat'], "error: unknown command 'strat' (did you mean \"start\"?)\n(run 'wdp --help' for usage)\n"],
  [['bench', 'cor'], "error: unknown command 'cor' (did you mean \"core\"?)\n(run 'wdp help bench' for usage)\n"],
  [['port', 'ad', 'x'], "error: unknown command 'ad' (did you mean \"add\"?)\n(run 'wdp help port' for usage)\n"],
  // a help topic that is no command: the same error (before: the parent's help, exit 0)
  [['help', 'strat'], "error: unknown command 'strat' (did you mean \"start\"?)\n(run 'wdp --help' for usage)\n"],
  [['help', 'port', 'ad'], "error: unknown command 'ad' (did you mean \"add\"?)\n(run 'wdp help port' for usage)\n"],
  // nothing close: no hint
  [['get', 'svc', '--zzzzzz'], "error: unknown option '--zzzzzz'\n(run 'wdp help get' for usage)\n"],
  [['frobnicate'], "error: unknown command 'frobnicate'\n(run 'wdp --help' for usage)\n"],
];
for (const [args, stderr] of cases) {
  test(`wdp ${args.join(' ')}: suggest.ts's hint`, (t) => {
    const r = run(args);
    t.is(r.status, 1);
    t.is(r.stderr, stderr);
  });
}

test('wdp start --conifg (the daemon\'s own entry point): the same hint', (t) => {
  const r = spawnSync(process.execPath, [WDP, 'start', '--conifg', 'x'], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 1);
  t.regex(r.stderr, /^error: unknown option '--conifg' \(did you mean "--config"\?\)\n/);
});

test('wdp get servces: the resource is suggested', (t) => {
  const r = run(['get', 'servces']);
  t.is(r.status, 1);
  t.regex(r.stderr, /^error: unknown resource "servces" \(did you mean "services"\?\): use services,/);
  const d = run(['delete', 'sevice', 'x']);
  t.regex(d.stderr, /^error: unknown resource "sevice" \(did you mean "service"\?\): use service or endpointslice/);
});

test('wdp help TOPIC for a real command still prints its help', (t) => {
  for (const [args, usage] of [[['help', 'get'], 'Usage: wdp get '], [['help', 'port', 'add'], 'Usage: wdp port add '], [['help', 'port', 'rm'], 'Usage: wdp port remove|rm ']]) {
    const r = spawnSync(process.execPath, [WDP, ...args], { encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, r.stderr);
    t.true(r.stdout.startsWith(usage), r.stdout);
  }
});
