#!/usr/bin/env node
// The wdp CNI plugin (src/cni/plugin.ts). Install it with `node bin/wdp-cni.js install [DIR]`
// (DIR: the runtime's CNI bin directory, /opt/cni/bin by default; src/cni/install.ts) — or from
// wdp's image onto a host, `install --prefix DIR --host-root ROOT ...` (src/cni/install-host.ts) — and chain
// it after the plugin that creates the pod's veth pair (docs/running.md, "Pods that come and go").
// Runtimes pass no arguments, so `install` cannot be mistaken for a CNI call.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const mod = new URL('../dist/src/cni/plugin.js', import.meta.url);
const modPath = fileURLToPath(mod);
if (process.argv[2] === 'install') {
  const installer = new URL('../dist/src/cni/install.js', import.meta.url);
  if (!existsSync(fileURLToPath(installer))) { process.stderr.write('wdp-cni install: wdp is not built: run `npm run build` first\n'); process.exit(1); }
  const { installPlugin, installUsage, parseInstallArgs } = await import(installer.href);
  const self = fileURLToPath(import.meta.url);
  // asked for: the usage on stdout, exit 0 (an unknown option is refused: exit 1)
  if (process.argv[3] === '--help' || process.argv[3] === '-h') { process.stdout.write(`${installUsage(self)}\n`); process.exit(0); }
  try {
    const args = parseInstallArgs(process.argv.slice(3), self);
    if (!args.prefix) {
      process.stdout.write(`installed ${installPlugin(args.binDir, self, modPath)}\n`);
    } else {
      // from wdp's image onto a host (the DaemonSet's install-cni container): src/cni/install-host.ts
      const { installOnHost, keepChained, DEFAULT_SERVER } = await import(new URL('../dist/src/cni/install-host.js', import.meta.url).href);
      // --watch: the chain is kept by keepChained, where a list not there yet is no error
      const r = installOnHost(args.watch ? { ...args, confDir: undefined } : args, self, modPath);
      process.stdout.write(`installed ${r.launcher} (release ${r.release}${r.reused ? ', already there' : ''}${r.removed.length ? `; removed older releases ${r.removed.join(', ')}` : ''})\n`);
      if (r.chained) process.stdout.write(`${r.chained.changed ? 'chained wdp-cni into' : 'wdp-cni already chained in'} ${r.chained.file}\n`);
      if (args.watch) {
        // the handlers before the first check: its line is printed synchronously, and a SIGTERM
        // right after it (a kubelet stopping the pod as it starts) must still end with 0
        let stop = () => {};
        for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => { stop(); process.exit(0); });
        stop = keepChained(join(args.hostRoot, args.confDir), args.server ?? DEFAULT_SERVER, Number(args.watch) * 1000, (line) => process.stdout.write(`${line}\n`));
        await new Promise(() => {}); // until a signal
      }
    }
    process.exit(0);
  } catch (e) {
    process.stderr.write(`wdp-cni install: ${e.message}\n`);
    process.exit(1);
  }
}
if (!existsSync(modPath)) {
  process.stdout.write(JSON.stringify({
    cniVersion: '1.0.0', code: 5, msg: `wdp-cni cannot find wdp's build at ${modPath}`,
    details: 'install the plugin with `node <wdp directory>/bin/wdp-cni.js install /opt/cni/bin` (a launcher naming wdp\'s directory), not a copy of bin/wdp-cni.js; or run `npm run build` in the wdp directory',
  }));
  process.exit(1);
}
// by hand (a runtime sets CNI_COMMAND and passes no arguments): a word that is not `install`
// is a typo of it, not a CNI call to answer with the about text
const byHand = !process.env.CNI_COMMAND;
if (byHand && process.argv[2] !== undefined && process.argv[2] !== '--help' && process.argv[2] !== '-h') {
  process.stderr.write(`wdp-cni: unknown command ${JSON.stringify(process.argv[2])}: the command is install (node ${fileURLToPath(import.meta.url)} install --help); run by a container runtime it takes no arguments\n`);
  process.exit(1);
}
const { runCni } = await import(mod.href);
let stdin = '';
try { stdin = readFileSync(0, 'utf8'); } catch { /* no stdin: VERSION may still work */ }
const r = await runCni(process.env, stdin, undefined, (s) => process.stderr.write(`${s}\n`));
if (r.stdout) process.stdout.write(r.stdout);
if (byHand) process.stderr.write(`install it: node ${fileURLToPath(import.meta.url)} install [DIR] (install --help: the options)\n`);
process.exit(r.exitCode);
