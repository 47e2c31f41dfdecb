// The V8 flags bin/wdp.js sets at run time (bin/v8-flags.js) take effect in this Node: with them a
// function is optimised only after several times as many calls as without. The count is read with
// V8's own status (--allow-natives-syntax) and synchronous optimisation, so it does not depend on
// timing; bin/wdp.js loads the flags before anything of wdp.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FLAGS = fileURLToPath(new URL('../bin/v8-flags.js', import.meta.url));
const WDP = fileURLToPath(new URL('../bin/wdp.js', import.meta.url));

/** Calls of a small function until V8 has optimised it, in a fresh process; `withFlags`: after
 * importing bin/v8-flags.js. */
function callsUntilOptimised(withFlags) {
  const script = `${withFlags ? `await import(${JSON.stringify(FLAGS)});` : ''}
    function f(a, b) { const x = a * 3 + (b >> 1); const y = x ^ (a << 2); return (x + y) | 0; }
    let n = 0, s = 0;
    while (!(%GetOptimizationStatus(f) & 16) && n < 1e7) { s += f(n, s); n++; }
    console.log(n);`;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', '--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node exited ${r.status}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

test('bin/v8-flags.js: the interrupt budget set at run time delays optimisation', (t) => {
  const without = callsUntilOptimised(false);
  const withFlags = callsUntilOptimised(true);
  t.true(without > 0 && without < 1e7, `optimised after ${without} calls without the flags`);
  t.true(withFlags > 4 * without, `optimised after ${withFlags} calls with the flags, ${without} without`);
});

test('bin/wdp.js sets the flags before it loads any of wdp', (t) => {
  const src = readFileSync(WDP, 'utf8');
  const flags = src.indexOf("import './v8-flags.js'");
  t.true(flags > 0, 'bin/wdp.js imports ./v8-flags.js');
  t.true(flags < src.indexOf('await import(cli.href)'), 'before the CLI');
});
