// Medians over the alternating fresh-process runs of bench/ab-builds.mjs, for the harnesses that
// print one flat JSON object per run (bench/profile-sync-worker.mjs).
import { loadavg } from 'node:os';
import { abOptions, alternate } from './ab-builds.mjs';

/** The harness's options (bench/ab-builds.mjs: --dist, --services, --endpoints, --runs, --json). */
export const harnessArgs = (argv) => abOptions(argv);

/** Runs `script` `runs` times per build, alternating, each a fresh process with env[childVar] set
 * to the build's dist; each prints one JSON object last. Prints the medians of `fields`. */
export function runAlternating({ script, argv, childVar, fields }) {
  const o = abOptions(argv);
  const by = alternate(script, o, childVar);
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const out = [...by].map(([dist, rs]) => ({ dist, runs: rs.length, ...Object.fromEntries(fields.map((f) => [f, Math.round(median(rs.map((x) => x[f])) * 10) / 10])), loadavg_1m: Math.round(loadavg()[0] * 10) / 10 }));
  if (o.json) console.log(JSON.stringify(out));
  else for (const x of out) console.log(`${x.dist}: medians of ${x.runs} fresh processes: ${fields.map((f) => `${f} ${x[f]}`).join(', ')} (load ${x.loadavg_1m})`);
}
