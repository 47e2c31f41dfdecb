// What the A/B harnesses in bench/ share: their options, and the runs of each build's dist/ in
// alternating fresh processes (drift in a shared machine's load hits every build alike).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** --dist DIR (repeatable; default this checkout's dist/), --services, --endpoints, --runs, --json. */
export function abOptions(argv = process.argv.slice(2)) {
  const arg = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i < 0 ? dflt : argv[i + 1]; };
  const dists = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--dist') dists.push(resolve(argv[i + 1]));
  if (!dists.length) dists.push(fileURLToPath(new URL('../dist', import.meta.url)));
  return { argv, dists, services: Number(arg('services', 10000)), endpoints: Number(arg('endpoints', 10)), runs: Number(arg('runs', 5)), json: argv.includes('--json') };
}

/** Runs `script` once per build per round, with env[childVar] naming the build's dist/; each
 * child prints one JSON line last. Answers each build's results, in run order. */
export function alternate(script, o, childVar) {
  const by = new Map(o.dists.map((d) => [d, []]));
  for (let r = 0; r < o.runs; r++) {
    for (const d of o.dists) {
      const p = spawnSync(process.execPath, [script, ...o.argv], { env: { ...process.env, [childVar]: d }, encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`run failed: ${p.stderr}`);
      by.get(d).push(JSON.parse(p.stdout.trim().split('\n').pop()));
    }
  }
  return by;
}
