// Installing wdp-cni where a container runtime finds it (/opt/cni/bin by default). A runtime
// executes `<bin dir>/<type>` with its own environment: a copy of bin/wdp-cni.js there would not
// find wdp's build (it resolves dist/ next to itself), and `#!/usr/bin/env node` depends on the
// runtime's PATH holding node. So what is installed is a launcher naming both by absolute path:
// this node binary and this checkout's bin/wdp-cni.js. It is written next to its final name and
// renamed over it, executable before the rename, so a runtime never runs a partial file.
import { chmodSync, existsSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';
export const PLUGIN_NAME = 'wdp-cni';

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The launcher's text: exec node on the plugin script, arguments and stdin passed on. */
export function launcherScript(nodePath: string, pluginScript: string): string {
  return [
    '#!/bin/sh',
    `# wdp's CNI plugin, installed by \`${pluginScript} install\`: it runs that checkout's build with this node.`,
    `exec ${shellQuote(nodePath)} ${shellQuote(pluginScript)} "$@"`,
    '',
  ].join('\n');
}

/** `install`'s usage line. */
export function installUsage(pluginScript: string): string {
  return `usage: node ${pluginScript} install [DIR] — writes DIR/${PLUGIN_NAME}, a launcher of this build (DIR: the runtime's CNI bin directory, default ${DEFAULT_CNI_BIN_DIR})`;
}

/** Writes `<dir>/wdp-cni`; returns its path. Throws with the reason when it cannot. */
export function installPlugin(dir: string, pluginScript: string, builtModule: string, nodePath = process.execPath): string {
  if (dir.startsWith('-')) throw new Error(installUsage(pluginScript));
  if (!existsSync(builtModule)) throw new Error(`wdp is not built (${builtModule} is missing): run \`npm run build\` first`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory (the runtime's CNI bin directory, e.g. ${DEFAULT_CNI_BIN_DIR})`);
  const target = join(dir, PLUGIN_NAME), tmp = `${target}.tmp-${process.pid}`;
  try {
    // never through a file or symlink already at the temporary name (a bin directory others can
    // write to could hold one pointing anywhere, and this runs as root): removed, then created
    // exclusively (O_EXCL does not follow a symlink)
    try { unlinkSync(tmp); } catch { /* none */ }
    writeFileSync(tmp, launcherScript(nodePath, realpathSync(pluginScript)), { mode: 0o755, flag: 'wx' });
    chmodSync(tmp, 0o755); // the umask may have taken bits off
    renameSync(tmp, target);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* not written */ }
    throw e;
  }
  return target;
}
