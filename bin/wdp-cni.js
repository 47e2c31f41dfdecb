#!/usr/bin/env node
// The wdp CNI plugin (src/cni/plugin.ts): install it as /opt/cni/bin/wdp-cni and chain it after
// the plugin that creates the pod's veth pair (docs/running.md, "Pods that come and go").
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const mod = new URL('../dist/src/cni/plugin.js', import.meta.url);
if (!existsSync(fileURLToPath(mod))) {
  process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', code: 5, msg: 'wdp-cni is not built: run `npm run build` in the wdp directory' }));
  process.exit(1);
}
const { runCni } = await import(mod.href);
let stdin = '';
try { stdin = readFileSync(0, 'utf8'); } catch { /* no stdin: VERSION may still work */ }
const r = await runCni(process.env, stdin, undefined, (s) => process.stderr.write(`${s}\n`));
if (r.stdout) process.stdout.write(r.stdout);
process.exit(r.exitCode);
