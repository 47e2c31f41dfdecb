// bench/ab-e2e.mjs's `command` variant (a router you bring, measured beside the others) and the
// prototype it was built for, bench/proto/tc-fastpath.rs (docs/performance.md, "An established-flow
// path in the kernel"): the prototype is compiled here and must forward — every blast frame it
// forwards arrives translated at the server's sink, every round trip comes back through it, also
// when its XDP program rewrites the frames itself (--xdp-redirect) — and its socket filter
// (--packet) must leave the frames it forwards alone. No timing thresholds.
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib/bench-cli.js';

const isRoot = process.getuid?.() === 0;
const rustc = (() => { try { execFileSync('rustc', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();
const tcx = (() => { const [a, b] = (execFileSync('uname', ['-r']).toString().match(/^(\d+)\.(\d+)/) ?? []).slice(1).map(Number); return a > 6 || (a === 6 && b >= 6); })();
const why = !isRoot ? 'needs root: namespaces' : !rustc ? 'needs rustc to build the prototype' : !tcx ? 'needs Linux 6.6 (tcx links)' : null;

const ab = (args) => new Promise((resolve) => execFile(process.execPath, [join(ROOT, 'bench/ab-e2e.mjs'), ...args], { cwd: ROOT, timeout: 240_000 },
  (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr })));

test('a command variant without its command is refused', async (t) => {
  const r = await ab(['--variant', 'a=kernel', '--variant', 'b=command']);
  t.is(r.code, 2);
  t.regex(r.stderr, /a command variant needs cmd=PATH/);
});

(why ? test.skip : test.serial)(`the tc fast-path prototype as a command variant: alone, behind a socket filter (--packet) and with its rules in XDP (--xdp-redirect) it forwards the blast translated and answers round trips; the socket filter takes none of the frames it forwards (${why ?? 'root, rustc, Linux ≥ 6.6'})`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-proto-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'tc-fastpath');
  execFileSync('rustc', ['-O', '-o', bin, join(ROOT, 'bench/proto/tc-fastpath.rs')], { stdio: 'pipe' });
  const out = join(dir, 'ab.json');
  const r = await ab(['--rounds', '1', '--rtt-chunk', '30', '--conn-seconds', '0', '--blast', 'one', '--blast-seconds', '0.5', '--json', out,
    '--variant', 'kernel=kernel', '--variant', `tc=command,cmd=${bin}`, '--variant', `tcpkt=command,cmd=${bin},arg=--packet`,
    '--variant', `xdpredir=command,cmd=${bin},arg=--xdp-redirect`]);
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(readFileSync(out, 'utf8')).res;
  // round trips reach the server's sockets only with both checksums right (the XDP program
  // updates them itself); the blast's sink counts what arrives translated
  for (const name of ['tc', 'tcpkt', 'xdpredir']) {
    const x = res.find((v) => v.name === name);
    t.is(x.unavailable_reason, undefined, `${name}: ${x.unavailable_reason}`);
    t.true(x.blasts.one.mpps > 0, `${name}: ${JSON.stringify(x.blasts.one)}`);
    t.is(x.rtt_samples, 30, name);
  }
  // what the filter took on each interface over the whole run: at most the neighbour traffic
  const took = [...(r.stdout + r.stderr).matchAll(/tcpkt: r[01]: the filter took (\d+) frames/g)].map((m) => Number(m[1]));
  t.is(took.length, 2, r.stderr);
  for (const n of took) t.true(n < 100, `the socket filter took ${n} frames: it should leave the forwarded ones alone`);
});
