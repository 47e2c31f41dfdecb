// The CLI fuzzer's oracle (test/lib/cli-fuzz.js `cliProblem`): "undefined" or "NaN" in an error
// is the CLI's own text leaking — unless it is the value the case sent, quoted back (seed 404
// case 42 sent `--sport NaN` and was answered `--sport must be a number, got "NaN"`, which is the
// clear message the CLI owes), or a path it sent, named where the CLI could not read it.
import test from 'ava';
import { cliProblem } from './lib/cli-fuzz.js';

const failed = (stderr) => ({ code: 1, stderr, signal: null, timedOut: false });

test('a value the case sent, quoted back in the error, is not the CLI\'s own "NaN" or "undefined"', (t) => {
  t.is(cliProblem(['trace', '--live', '--sport', 'NaN'], failed('error: --sport must be a number, got "NaN"\n')), null);
  t.is(cliProblem(['get', 'services', 'undefined', '-n', 'x'], failed('error: service "undefined" not found\n')), null);
});

test('a path the case sent, named where the CLI could not read it, is the user\'s text (seed 1144 case 306)', (t) => {
  t.is(cliProblem(['replay', '-w', '--flows', 'NaN', '-f', '/tmp/bad.yaml'], failed('error: cannot read pcap file NaN: ENOENT\n')), null);
  t.is(cliProblem(['apply', '-f', 'undefined'], failed('error: cannot read undefined: ENOENT\n')), null);
  // the CLI's own "NaN" beside it still counts
  t.is(cliProblem(['replay', 'NaN'], failed('error: cannot read pcap file NaN: ENOENT at offset NaN\n')), '"undefined"/"NaN" in the message');
  t.is(cliProblem(['replay', 'x.pcap'], failed('error: cannot read pcap file NaN: ENOENT\n')), '"undefined"/"NaN" in the message');
});

test('"NaN" or "undefined" of the CLI\'s own making is a problem, also beside a quoted value', (t) => {
  t.is(cliProblem(['trace', '--sport', '5'], failed('error: --sport must be a number, got NaN\n')), '"undefined"/"NaN" in the message');
  t.is(cliProblem(['trace', '--sport', 'NaN'], failed('error: --sport "NaN" is out of range NaN..65535\n')), '"undefined"/"NaN" in the message');
});
