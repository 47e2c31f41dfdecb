// Installing wdp-cni on a host that need not have node or wdp, from wdp's image (the DaemonSet's
// install-cni container, deploy/base/daemonset.yaml), as Calico's and Cilium's install-cni put their plugins
// on the host: the host's directories are mounted under a root (`hostRoot`, e.g. /host), and what
// the plugin runs with is copied there —
//
//   <prefix>/<release>/node, lib/ (node's shared libraries and its dynamic loader, as `ldd` lists
//       them: the launcher runs node through that loader with that library path, so the host's
//       libc and libstdc++, or their absence, do not matter), bin/wdp-cni.js, the plugin's
//       modules under dist/ (the static relative imports of dist/src/cni/plugin.js: it imports
//       no package, which is checked) and a package.json saying they are ES modules;
//   <binDir>/wdp-cni: the launcher (src/cni/install.ts), naming that release by host paths.
//
// <release> is a hash of every file copied: an install of the same image finds it there and
// writes nothing but the launcher (the same text: idempotent); a new image's release is written
// beside the old one as `.tmp-<release>-<pid>` and renamed into place whole, and only then is the
// launcher renamed over the old one — a runtime runs the old release or the new one, never a
// mixture. Releases the old launcher did not name are removed afterwards (the old one stays for a
// plugin still starting from it, until the next install).
//
// With `confDir`, the plugin is chained into the network the runtime uses: the first network
// configuration file in name order (.conf, .conflist, .json: how libcni's ConfFiles and
// containerd / CRI-O choose it) gets {"type": "wdp-cni", "server": ...} appended to its plugins,
// written as a temporary file renamed over it. A list that has a wdp-cni entry already is left as
// it is (the operator's settings win); a single-plugin .conf, a list of CNI < 0.3.0 (no
// prevResult for a chained plugin) or no file at all is an error naming the file: wdp-cni chains
// after the plugin that makes the pod's veth (docs/running.md, "The CNI plugin").
//
// `keepChained` (install --watch, the DaemonSet's install-cni container) chains it again whenever
// that list appears or loses the entry: a primary CNI plugin writes its list when its own agent
// starts — some only once they reach the API server, through the kubernetes Service wdp
// translates — and rewrites it at each restart, so the chain cannot be a condition of wdp's start.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { checkBinDir, launcherScript, PLUGIN_NAME, writeAtomically, type InstallArgs } from './install.js';
import { systemTool } from '../util/system-tool.js';

export const DEFAULT_SERVER = 'unix:/run/wdp/api.sock';

export interface HostInstall { launcher: string; release: string; reused: boolean; removed: string[]; chained?: { file: string; changed: boolean } }

/** A file of the release: its path inside it, where it comes from (or its text), its mode. */
interface ReleaseFile { rel: string; from?: string; text?: string; mode: number }

/** The modules the plugin loads: `entry` and its static relative imports, recursively (what tsc
 * emits: `import ... from './x.js'`, `export ... from './x.js'`). A package import is an error:
 * the release has no node_modules. */
export function moduleClosure(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) throw new Error(`${file} imports the package "${spec}": the plugin must run without node_modules`);
      visit(resolve(dirname(file), spec));
    }
  };
  visit(entry);
  return [...seen];
}

/** node's shared libraries and dynamic loader as `ldd` resolves them: [[name, path]]; [] for a
 * static node (or no ldd: then node runs with the host's libraries). A library ldd cannot find is
 * an error: node would not start from the release. */
export function nodeLibraries(nodePath: string): Array<[string, string]> {
  const ldd = systemTool('ldd');
  if (!ldd) return [];
  let out: string;
  try { out = execFileSync(ldd, [nodePath], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }); } catch { return []; }
  const libs: Array<[string, string]> = [];
  for (const line of out.split('\n')) {
    const missing = /^\s*(\S+)\s+=>\s+not found/.exec(line);
    if (missing) throw new Error(`node (${nodePath}) needs ${missing[1]}, which ldd does not find`);
    const arrow = /^\s*(\S+)\s+=>\s+(\/\S+)/.exec(line);
    const loader = /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (arrow) libs.push([arrow[1], arrow[2]]);
    else if (loader) libs.push([basename(loader[1]), loader[1]]);
  }
  return libs;
}

const LOADER_RE = /^ld-linux.*\.so(\.\d+)*$|^ld64\.so(\.\d+)*$|^ld-musl-.*\.so(\.\d+)*$/;

function releaseFiles(pluginScript: string, builtModule: string, nodePath: string): { files: ReleaseFile[]; loader?: string } {
  const distRoot = resolve(dirname(builtModule), '../..'); // dist/src/cni/plugin.js -> dist
  const files: ReleaseFile[] = [
    { rel: 'node', from: realpathSync(nodePath), mode: 0o755 },
    { rel: 'bin/wdp-cni.js', from: realpathSync(pluginScript), mode: 0o644 },
    { rel: 'package.json', text: '{ "type": "module" }\n', mode: 0o644 },
    ...moduleClosure(realpathSync(builtModule)).map((f) => ({ rel: posix.join('dist', relative(distRoot, f)), from: f, mode: 0o644 })),
  ];
  const libs = nodeLibraries(nodePath);
  const loader = libs.find(([name]) => LOADER_RE.test(name))?.[0];
  // without its loader the copied libraries cannot be used: node runs with the host's then
  if (loader) for (const [name, path] of libs) files.push({ rel: `lib/${name}`, from: realpathSync(path), mode: 0o755 });
  return { files, loader };
}

function hashOf(files: ReleaseFile[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.rel < b.rel ? -1 : 1))) {
    h.update(`${f.rel}\0${f.mode}\0`);
    h.update(f.text ?? readFileSync(f.from!));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/** The release directory a launcher under `prefix` runs, if it is one of ours. */
function releaseOf(launcher: string, prefix: string): string | undefined {
  let text: string;
  try { text = readFileSync(launcher, 'utf8'); } catch { return undefined; }
  const at = text.indexOf(`'${prefix}/`);
  if (at < 0) return undefined;
  return text.slice(at + prefix.length + 2).split(/[/']/)[0] || undefined;
}

/** Installs the plugin on the host mounted at `a.hostRoot` (see the file's comment). Throws with
 * the reason; the launcher is written only once its release is complete. */
export function installOnHost(a: InstallArgs & { prefix: string }, pluginScript: string, builtModule: string, nodePath = process.execPath): HostInstall {
  if (!existsSync(builtModule)) throw new Error(`wdp is not built (${builtModule} is missing): run \`npm run build\` first`);
  const onHost = (p: string) => join(a.hostRoot, p);
  const binDir = onHost(a.binDir);
  checkBinDir(binDir);
  const prefixHere = onHost(a.prefix);
  mkdirSync(prefixHere, { recursive: true, mode: 0o755 });
  if (!statSync(prefixHere).isDirectory()) throw new Error(`${prefixHere} is not a directory`);
  const { files, loader } = releaseFiles(pluginScript, builtModule, nodePath);
  const id = hashOf(files);
  const releaseHere = join(prefixHere, id), release = posix.join(a.prefix, id);
  const reused = existsSync(join(releaseHere, 'bin/wdp-cni.js'));
  if (!reused) {
    const tmp = join(prefixHere, `.tmp-${id}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    try {
      for (const f of files) {
        const to = join(tmp, f.rel);
        mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
        if (f.text !== undefined) writeFileSync(to, f.text, { mode: f.mode }); else copyFileSync(f.from!, to);
      }
      rmSync(releaseHere, { recursive: true, force: true }); // a release without its plugin: not ours to keep
      renameSync(tmp, releaseHere);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  const target = join(binDir, PLUGIN_NAME);
  const previous = releaseOf(target, a.prefix);
  const node = loader
    ? { node: `${release}/node`, loader: `${release}/lib/${loader}`, libDir: `${release}/lib` }
    : { node: `${release}/node` };
  writeAtomically(target, launcherScript(node, `${release}/bin/wdp-cni.js`, 'wdp-cni install --prefix (deploy/base/daemonset.yaml\'s install-cni container)'));
  // older releases: gone, but the one the previous launcher ran (a plugin may be starting from it)
  const removed: string[] = [];
  for (const d of readdirSync(prefixHere)) {
    if (d === id || d === previous || !/^(\.tmp-)?[0-9a-f]{16}(-\d+)?$/.test(d)) continue;
    if (d.startsWith('.tmp-') && d.endsWith(`-${process.pid}`)) continue;
    rmSync(join(prefixHere, d), { recursive: true, force: true });
    removed.push(d);
  }
  const out: HostInstall = { launcher: target, release, reused, removed };
  if (a.confDir) out.chained = chainPlugin(onHost(a.confDir), a.server ?? DEFAULT_SERVER);
  return out;
}

const CNI_CONF_EXT = /\.(conf|conflist|json)$/;

/** Appends wdp-cni to the runtime's network configuration list in `dir` (see the file's comment). */
export function chainPlugin(dir: string, server: string): { file: string; changed: boolean } {
  let names: string[];
  try { names = readdirSync(dir).filter((n) => CNI_CONF_EXT.test(n)).sort(); } catch (e) { throw new Error(`cannot read the CNI network configuration directory ${dir}: ${(e as Error).message}`); }
  if (!names.length) throw new Error(`no CNI network configuration in ${dir} yet: wdp-cni is chained after the plugin that gives each pod its veth (e.g. ptp), whose network config list must be there first (docs/running.md, "The CNI plugin")`);
  const file = join(dir, names[0]);
  let list: { cniVersion?: unknown; cniVersions?: unknown; plugins?: unknown };
  try { list = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new Error(`${file} is not valid JSON: ${(e as Error).message}`); }
  if (!list || typeof list !== 'object' || !Array.isArray(list.plugins)) throw new Error(`${file} is a single-plugin network configuration, not a list with "plugins": wdp-cni can only be chained in a list (.conflist)`);
  // the version the runtime picks: cniVersion, or the highest of cniVersions it knows (spec 1.1)
  const versions = [list.cniVersion, ...(Array.isArray(list.cniVersions) ? list.cniVersions : [])].filter((v) => v !== undefined).map(String);
  if (!versions.some((v) => /^(0\.[3-9]|[1-9]\d*)\./.test(v))) throw new Error(`${file}: cniVersion "${versions.join('", "')}" has no chained plugins (prevResult): 0.3.0 or later is needed`);
  if (list.plugins.some((p) => (p as { type?: unknown })?.type === PLUGIN_NAME)) return { file, changed: false };
  list.plugins.push({ type: PLUGIN_NAME, server });
  writeAtomically(file, `${JSON.stringify(list, null, 2)}\n`, 0o644);
  return { file, changed: true };
}

/** Keeps wdp-cni chained in `dir`'s list (see the file's comment): checks now, every `everyMs` and
 * when the directory changes; `log` gets a line when the plugin is chained and when the outcome
 * of a check changes (a missing or refused list is reported once, not at every check). Returns
 * the stop. */
export function keepChained(dir: string, server: string, everyMs: number, log: (line: string) => void): () => void {
  let last = '';
  let pending: NodeJS.Timeout | undefined;
  const check = () => {
    pending = undefined;
    let line: string;
    try {
      const r = chainPlugin(dir, server);
      line = r.changed ? `chained wdp-cni into ${r.file}` : `wdp-cni already chained in ${r.file}`;
    } catch (e) {
      line = `wdp-cni not chained: ${(e as Error).message}`;
    }
    if (line !== last || line.startsWith('chained')) log(line);
    last = line;
  };
  check();
  const timer = setInterval(check, everyMs);
  let watcher: FSWatcher | undefined;
  // a change of the directory (the list written, a rename over it — ours too) is checked after a
  // short pause, so that a burst of events is one check
  try { watcher = watch(dir, () => { pending ??= setTimeout(check, 100); }); } catch { /* a directory not there yet: the timer's checks */ }
  watcher?.on('error', () => { watcher?.close(); watcher = undefined; });
  return () => { clearInterval(timer); if (pending) clearTimeout(pending); watcher?.close(); };
}
