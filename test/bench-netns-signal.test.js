// The benches' namespaces (src/bench/peers/netns.ts) are deleted when the bench is stopped by a
// signal: SIGINT (Ctrl-C), SIGTERM, and SIGHUP (its terminal went away). The exit hook that
// deletes them also kills the control bench's daemon, which runs in a session of its own and so
// gets no signal from the bench's terminal.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { within } from './lib/bounded-wait.js';

const NETNS = new URL('../dist/src/bench/peers/netns.js', import.meta.url).href;
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const hasIp = spawnSync('ip', ['-V']).status === 0;
const nsList = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  (root && hasIp ? test.serial : test.skip)(`a bench stopped by ${sig} deletes its namespaces${root && hasIp ? '' : ' (needs root and ip)'}`, async (t) => {
    const script = `const { createNs } = await import(${JSON.stringify(NETNS)}); console.log(await createNs('sg')); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let ns = '';
    try {
      ns = await new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('no namespace within 60 s')), 60_000);
        child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) { clearTimeout(timer); resolve(out.trim()); } });
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited early (${code})`)); });
      });
      t.true(nsList().includes(ns), 'the namespace exists while the bench runs');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(sig);
      await within(exited, 30_000);
      t.not(child.exitCode === null && child.signalCode === null, true, 'the bench exited');
      t.false(nsList().includes(ns), `${ns} deleted`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (ns && nsList().includes(ns)) spawnSync('ip', ['netns', 'del', ns]);
    }
  });
}
