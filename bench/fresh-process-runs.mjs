// The parent side of the standalone harnesses that time one stage of a daemon's first full sync in
// fresh processes (bench/profile-sync-*.mjs): their command line, runs alternating between the
// builds given with --dist (drift in a shared machine's load hits each alike), medians per field.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The harness's options: --dist DIR (repeatable; default this checkout's dist), --services,
 * --endpoints, --runs, --json. */
export function harnessArgs(argv) {
  const arg = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i < 0 ? dflt : argv[i + 1]; };
  const dists = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--dist') dists.push(resolve(argv[i + 1]));
  if (!dists.length) dists.push(fileURLToPath(new URL('../dist', import.meta.url)));
  return { dists, services: Number(arg('services', 10000)), endpoints: Number(arg('endpoints', 10)), runs: Number(arg('runs', 5)), json: argv.includes('--json') };
}

/** Runs `script` `runs` times per build, alternating, each a fresh process with env[childVar] set
 * to the build's dist; each prints one JSON object last. Prints the medians of `fields`. */
export function runAlternating({ script, argv, childVar, fields }) {
  const { dists, runs, json } = harnessArgs(argv);
  const by = new Map(dists.map((d) => [d, []]));
  for (let r = 0; r < runs; r++) {
    for (const d of dists) {
      const p = spawnSync(process.execPath, [script, ...argv], { env: { ...process.env, [childVar]: d }, encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`run failed: ${p.stderr}`);
      by.get(d).push(JSON.parse(p.stdout.trim().split('\n').pop()));
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const out = [...by].map(([dist, rs]) => ({ dist, runs: rs.length, ...Object.fromEntries(fields.map((f) => [f, Math.round(median(rs.map((x) => x[f])) * 10) / 10])), loadavg_1m: Math.round(loadavg()[0] * 10) / 10 }));
  if (json) console.log(JSON.stringify(out));
  else for (const o of out) console.log(`${o.dist}: medians of ${o.runs} fresh processes: ${fields.map((f) => `${f} ${o[f]}`).join(', ')} (load ${o.loadavg_1m})`);
}
