// What the A/B harnesses in bench/ share: their options, the runs of each build's dist/ in
// alternating fresh processes (drift in a shared machine's load hits every build alike), and
// the medians of those runs.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from '../dist/src/bench/report.js';

/** --dist DIR (repeatable; default this checkout's dist/), --services, --endpoints, --runs, --json. */
export function abOptions(argv = process.argv.slice(2)) {
  const arg = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i < 0 ? dflt : argv[i + 1]; };
  const dists = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--dist') dists.push(resolve(argv[i + 1]));
  if (!dists.length) dists.push(fileURLToPath(new URL('../dist', import.meta.url)));
  return { argv, dists, services: Number(arg('services', 10000)), endpoints: Number(arg('endpoints', 10)), runs: Number(arg('runs', 5)), json: argv.includes('--json') };
}

/** Runs `run(v)` once per variant per round, `rounds` rounds, the variants' order reversed every
 * other round (ABBA: drift in a shared machine's load hits every variant alike, where ABAB favours
 * whichever runs second). Answers each variant's results in run order (`run` answering undefined:
 * a run that failed, left out). */
export function alternateRuns(rounds, variants, run) {
  const by = new Map(variants.map((v) => [v, []]));
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 ? [...variants].reverse() : variants) {
      const x = run(v);
      if (x !== undefined) by.get(v).push(x);
    }
  }
  return by;
}

/** Runs `node script ...args` with `env` added; answers its last stdout line as JSON, or throws
 * with its stderr's tail when it failed. */
export function runJsonChild(script, args, env) {
  const p = spawnSync(process.execPath, [script, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (p.status !== 0) throw new Error(`run failed: ${p.stderr.slice(-2000)}`);
  return JSON.parse(p.stdout.trim().split('\n').pop());
}

/** Runs `script` once per build per round (alternateRuns), with env[childVar] naming the build's
 * dist/; each child prints one JSON line last. Answers each build's results, in run order. */
export function alternate(script, o, childVar) {
  return alternateRuns(o.runs, o.dists, (d) => runJsonChild(script, o.argv, { [childVar]: d }));
}

/** alternate(), then the medians of `fields` per build (printed, or one JSON line with --json),
 * for the harnesses whose children print one flat JSON object each. */
export function runAlternating({ script, argv, childVar, fields }) {
  const o = abOptions(argv);
  const by = alternate(script, o, childVar);
  const out = [...by].map(([dist, rs]) => ({ dist, runs: rs.length, ...Object.fromEntries(fields.map((f) => [f, Math.round(median(rs.map((x) => x[f])) * 10) / 10])), loadavg_1m: Math.round(loadavg()[0] * 10) / 10 }));
  if (o.json) console.log(JSON.stringify(out));
  else for (const x of out) console.log(`${x.dist}: medians of ${x.runs} fresh processes: ${fields.map((f) => `${f} ${x[f]}`).join(', ')} (load ${x.loadavg_1m})`);
}

/** A harness's entry point: in a child (env[childVar] names one build's dist/) runs
 * `child(imp, dist)`, `imp(path)` importing that build's module at dist/path; otherwise runs the
 * children alternately over the --dist builds (runAlternating). */
export async function harness({ url, childVar, fields, child }) {
  const dist = process.env[childVar];
  if (dist) return child((p) => import(pathToFileURL(`${dist}/${p}`).href), dist);
  runAlternating({ script: fileURLToPath(url), argv: process.argv.slice(2), childVar, fields });
}
