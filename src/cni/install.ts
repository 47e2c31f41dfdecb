// Installing wdp-cni where a container runtime finds it (/opt/cni/bin by default). A runtime
// executes `<bin dir>/<type>` with its own environment: a copy of bin/wdp-cni.js there would not
// find wdp's build (it resolves dist/ next to itself), and `#!/usr/bin/env node` depends on the
// runtime's PATH holding node. So what is installed is a launcher naming both by absolute path:
// a node binary and a bin/wdp-cni.js with its build beside it — this checkout's (`install DIR`),
// or a copy of what the plugin runs with put on the host (`install --prefix`, from a container:
// src/cni/install-host.ts). It is written next to its final name and renamed over it, executable
// before the rename, so a runtime never runs a partial file.
import { chmodSync, existsSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';
export const PLUGIN_NAME = 'wdp-cni';

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** How the launcher starts node: the binary, and (a copied node) the dynamic loader and library
 * directory it was copied with, so that it runs with its own libraries, not the host's. */
export interface NodeCommand { node: string; loader?: string; libDir?: string }

/** The launcher's text: exec node on the plugin script, arguments and stdin passed on. */
export function launcherScript(node: string | NodeCommand, pluginScript: string, installedBy = `\`${pluginScript} install\``): string {
  const n = typeof node === 'string' ? { node } : node;
  const argv = n.loader ? [n.loader, '--library-path', n.libDir ?? '', n.node] : [n.node];
  return [
    '#!/bin/sh',
    `# wdp's CNI plugin, installed by ${installedBy}: it runs that build with this node.`,
    `exec ${[...argv, pluginScript].map(shellQuote).join(' ')} "$@"`,
    '',
  ].join('\n');
}

/** `install`'s usage. */
export function installUsage(pluginScript: string): string {
  return [
    `usage: node ${pluginScript} install [DIR] — writes DIR/${PLUGIN_NAME}, a launcher of this build (DIR: the runtime's CNI bin directory, default ${DEFAULT_CNI_BIN_DIR})`,
    `       node ${pluginScript} install --prefix DIR [--host-root ROOT] [--bin-dir DIR] [--conf-dir DIR [--watch SECONDS]] [--server ADDR]`,
    '         copies node (with its libraries) and the plugin\'s build to ROOT/PREFIX/<release>, writes the launcher',
    `         ROOT/BIN-DIR/${PLUGIN_NAME} naming it by host paths, removes older releases; with --conf-dir, appends`,
    '         {"type": "wdp-cni", "server": ADDR} to the runtime\'s network config list there (the first in name order),',
    '         unless it has a wdp-cni entry. ROOT: where the host\'s root is mounted (default /); ADDR: default unix:/run/wdp/api.sock',
    '         --watch: keeps running after the install and chains the plugin whenever that list appears or loses its',
    '         wdp-cni entry (checked every SECONDS and when the directory changes) until SIGTERM; no list yet is no error',
  ].join('\n');
}

export interface InstallArgs { binDir: string; prefix?: string; hostRoot: string; confDir?: string; server?: string; watch?: string }

/** `install`'s arguments: [DIR] (the bin directory), or options. Throws with the usage. */
export function parseInstallArgs(args: string[], pluginScript: string): InstallArgs {
  const out: InstallArgs = { binDir: DEFAULT_CNI_BIN_DIR, hostRoot: '/' };
  const opts: Record<string, keyof InstallArgs> = { '--prefix': 'prefix', '--host-root': 'hostRoot', '--bin-dir': 'binDir', '--conf-dir': 'confDir', '--server': 'server', '--watch': 'watch' };
  let positional = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const key = opts[a];
    if (key) {
      const v = args[++i];
      if (v === undefined || v === '') throw new Error(`${a} needs a value\n${installUsage(pluginScript)}`);
      out[key] = v;
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}\n${installUsage(pluginScript)}`);
    else if (positional++ > 0) throw new Error(`one DIR only, got ${JSON.stringify(a)} too\n${installUsage(pluginScript)}`);
    else out.binDir = a;
  }
  if (!out.prefix && (out.hostRoot !== '/' || out.confDir || out.server || out.watch)) throw new Error(`--host-root, --conf-dir, --watch and --server go with --prefix\n${installUsage(pluginScript)}`);
  if (out.watch !== undefined) {
    if (!out.confDir) throw new Error(`--watch keeps the plugin chained in --conf-dir's list: give --conf-dir\n${installUsage(pluginScript)}`);
    if (!/^\d+(\.\d+)?$/.test(out.watch) || !(Number(out.watch) > 0) || Number(out.watch) > 3600) throw new Error(`--watch must be a number of seconds in (0, 3600]: ${out.watch}`);
  }
  // host paths: absolute (a relative one would be the container's working directory's)
  for (const [flag, k] of Object.entries(opts)) {
    const v = out[k];
    if (out.prefix && k !== 'server' && k !== 'watch' && v !== undefined && !v.startsWith('/')) throw new Error(`${flag} must be an absolute path: ${v}`);
  }
  return out;
}

/** Writes `text` to `target` as an executable (mode 0755), through a temporary file renamed over
 * it: never through a file or symlink already at the temporary name (a bin directory others can
 * write to could hold one pointing anywhere, and this runs as root) — removed, then created
 * exclusively (O_EXCL does not follow a symlink). */
export function writeAtomically(target: string, text: string, mode = 0o755): void {
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    try { unlinkSync(tmp); } catch { /* none */ }
    writeFileSync(tmp, text, { mode, flag: 'wx' });
    chmodSync(tmp, mode); // the umask may have taken bits off
    renameSync(tmp, target);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* not written */ }
    throw e;
  }
}

/** The runtime's CNI bin directory must exist (it is the runtime's, not ours to create). */
export function checkBinDir(dir: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory (the runtime's CNI bin directory, e.g. ${DEFAULT_CNI_BIN_DIR})`);
}

/** Writes `<dir>/wdp-cni`, a launcher of this checkout's build; returns its path. Throws with the
 * reason when it cannot. */
export function installPlugin(dir: string, pluginScript: string, builtModule: string, nodePath = process.execPath): string {
  if (dir.startsWith('-')) throw new Error(installUsage(pluginScript));
  if (!existsSync(builtModule)) throw new Error(`wdp is not built (${builtModule} is missing): run \`npm run build\` first`);
  checkBinDir(dir);
  const target = join(dir, PLUGIN_NAME);
  writeAtomically(target, launcherScript(nodePath, realpathSync(pluginScript)));
  return target;
}
