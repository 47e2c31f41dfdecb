// wdp-cni: a CNI plugin (containernetworking/cni SPEC.md) that attaches a pod's interface to the
// running wdp daemon on ADD and detaches it on DEL, through the daemon's ports API. It is a
// chained plugin: it runs after the plugin that created the pod's veth pair and gave it its
// addresses (e.g. `ptp` with host-local IPAM), takes that plugin's result (prevResult), and
//
//   ADD    finds the host-side veth (the interface of prevResult without `sandbox` that is a veth
//          of its own: not a bridge's port, not the IFB device `bandwidth` appends), removes the
//          addresses the previous plugin put on it (the dataplane answers for the pod's gateway
//          now: prevResult's gateways + the config's `gateways`), and adds an AF_PACKET pod port
//          on it with the pod's addresses and MAC and the attachment it is for (network `name`,
//          CNI_CONTAINERID, CNI_IFNAME: saved with the port, src/cni/attachment.ts); prints
//          prevResult (unchanged) as its result. An ADD repeated for an attachment whose port is
//          there (the same interface, addresses and attachment) succeeds; otherwise it is an error;
//   DEL    removes that port (no port, or no daemon: success — DEL must succeed when there is
//          nothing left to delete; the daemon drops ports whose interface is gone, and GC those
//          whose attachment is gone; a daemon that answers 503, stopping or starting, is there
//          to remove it once it serves: code 11, and the runtime retries the DEL);
//   CHECK  the port exists, on that interface, with those pod addresses, for this attachment;
//   STATUS (spec 1.1.0) ready when the daemon answers its health check; else code 50, so the
//          runtime (containerd, CRI-O) reports the node's network as not ready;
//   GC     (spec 1.1.0) asks the daemon to remove every port of this network (`name`) whose
//          attachment is not in `cni.dev/valid-attachments` (src/daemon/cni-gc.ts), as DEL
//          would; ports of other networks and ports without an attachment stay;
//   VERSION the versions below.
//
// Network config (stdin): { cniVersion, name, type: "wdp-cni", server?: "unix:/run/wdp/api.sock"
// | "http://127.0.0.1:9440", token?, gateways?: [...], worker?: n, flushHostAddresses?: true,
// prevResult }. Errors: JSON { cniVersion, code, msg, details } on stdout, non-zero exit; codes
// from the spec (1 incompatible version, 4 bad environment, 6 undecodable config, 7 invalid config,
// 11 try again later: the daemon is not answering, or answers 503 — stopping, or its dataplane not
// running yet —, 50 (STATUS) not available) and 100+ for wdp's own (100 the daemon refused the
// change, 101 CHECK failed, 102 GC left stale ports behind).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { ApiClient, ApiError, DEFAULT_SERVER } from '../cli/client.js';
import { CNI_ID_RE, sameAttachment, validCniIfname, type CniAttachment } from './attachment.js';
import { systemTool } from '../util/system-tool.js';

// 1.1.0's results are 1.0.0's plus optional fields: prevResult passes through either way. A
// configuration list may name several versions (cniVersions); libcni then sends the highest it
// implements without asking the plugins, so every version of the list must be here.
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const CHECK_FROM = '0.4.0'; // CHECK exists from spec 0.4.0 on
const STATUS_GC_FROM = '1.1.0'; // and STATUS and GC from 1.1.0 on

export const E_INCOMPATIBLE = 1, E_ENV = 4, E_DECODE = 6, E_CONFIG = 7, E_TRY_LATER = 11, E_UNAVAILABLE = 50;
export const E_ATTACH = 100, E_CHECK = 101, E_GC = 102;

export class CniError extends Error {
  constructor(readonly code: number, message: string, readonly details = '') { super(message); this.name = 'CniError'; }
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface CniOutcome { stdout: string; exitCode: number }

/** What the plugin needs from the outside world (a test substitutes the network calls). */
export interface CniDeps {
  /** The daemon's API client; `timeoutMs`: how long one call waits for its answer. */
  api(conf: Json, timeoutMs?: number): Pick<ApiClient, 'call'>;
  /** Remove the previous plugin's addresses from the host-side interface. */
  flushAddresses(ifname: string): void;
  /** The interface's kind (veth, bridge, ifb, ...) and its master, if any; undefined if there is
   * no such interface. */
  linkInfo(ifname: string): { kind?: string; master?: string } | undefined;
}

/** How long a call waits for the daemon's answer: ADD, DEL, CHECK and STATUS are one port each. A
 * GC removes every stale port of the network in one request, one after another (each closed in
 * its worker, let back to the kernel, saved, the node config re-programmed), which goes on in the
 * daemon whether the plugin waits or not: it is waited for much longer (the runtime bounds the
 * plugin's run itself), so that many stale ports are reported removed rather than "not answering". */
export const CALL_TIMEOUT_MS = 20_000;
export const GC_TIMEOUT_MS = 300_000;

/** iproute2's `ip` from the system directories: a runtime runs the plugin with its own
 * environment, whose PATH need not hold them (src/util/system-tool.ts). */
const ip = (): string => systemTool('ip') ?? 'ip';

export const defaultDeps: CniDeps = {
  api: (conf, timeoutMs = CALL_TIMEOUT_MS) => new ApiClient({ server: conf.server ?? DEFAULT_SERVER, ...(conf.token ? { token: conf.token } : {}), timeoutMs }),
  flushAddresses: (ifname) => { execFileSync(ip(), ['addr', 'flush', 'dev', ifname], { stdio: 'pipe' }); },
  linkInfo: (ifname) => {
    let out: string;
    try { out = execFileSync(ip(), ['-j', '-d', 'link', 'show', 'dev', ifname], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`cannot run ip (iproute2): ${(e as Error).message}`);
      return undefined;
    }
    const l = (JSON.parse(out) as Json[])[0];
    return l ? { kind: l.linkinfo?.info_kind, master: l.master } : undefined;
  },
};

/** The port's name for this attachment: stable per (container, interface), valid as a port name. */
export function portName(containerId: string, ifname: string): string {
  return `cni-${createHash('sha256').update(`${containerId}\0${ifname}`).digest('hex').slice(0, 16)}`;
}

function cmpVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number), pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

function need(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new CniError(E_ENV, `${name} is not set`, `the runtime must set ${name} for ${env.CNI_COMMAND}`);
  return v;
}

/** The network configuration on stdin, checked. `forDel`: only what a DEL or a GC uses (version,
 * server): a config whose other fields went bad after its pods were added must not fail their
 * DELs (the runtime retries a failed DEL, and the pod stays Terminating) nor the GC. */
function parseConf(stdin: string, forDel = false): Json {
  let conf: unknown;
  try { conf = JSON.parse(stdin); } catch (e) { throw new CniError(E_DECODE, 'network configuration on stdin is not JSON', (e as Error).message); }
  if (!conf || typeof conf !== 'object' || Array.isArray(conf)) throw new CniError(E_DECODE, 'network configuration on stdin must be a JSON object');
  const c = conf as Json;
  if (typeof c.cniVersion !== 'string') throw new CniError(E_CONFIG, 'cniVersion is missing');
  if (!SUPPORTED_VERSIONS.includes(c.cniVersion)) throw new CniError(E_INCOMPATIBLE, `CNI version ${c.cniVersion} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  if (!forDel && c.gateways !== undefined && (!Array.isArray(c.gateways) || c.gateways.some((g: unknown) => typeof g !== 'string' || isIP(g) === 0))) throw new CniError(E_CONFIG, 'gateways must be a list of IP addresses');
  if (!forDel && c.worker !== undefined && !(Number.isInteger(c.worker) && c.worker >= 0)) throw new CniError(E_CONFIG, 'worker must be a non-negative integer');
  if (c.server !== undefined && typeof c.server !== 'string') throw new CniError(E_CONFIG, 'server must be a string (unix:/path or http://host:port)');
  return c;
}

interface Attachment { hostIf: string; pods: Array<{ ip: string; mac?: string }>; gateways: string[] }

/** What prevResult says about this attachment: the host-side interface, the pod's addresses and
 * MAC (the sandbox interface named CNI_IFNAME), the gateways the pod routes through. */
export function attachmentOf(conf: Json, netns: string, ifname: string, linkInfo: CniDeps['linkInfo']): Attachment {
  const prev = conf.prevResult as Json | undefined;
  if (!prev || typeof prev !== 'object') throw new CniError(E_CONFIG, 'wdp-cni is a chained plugin: the configuration has no prevResult', 'list it after a plugin that creates the pod\'s veth pair, e.g. ptp');
  const ifs: Json[] = Array.isArray(prev.interfaces) ? prev.interfaces : [];
  const podIdx = ifs.findIndex((i) => i && i.name === ifname && (!i.sandbox || i.sandbox === netns));
  const hostIfs = ifs.filter((i) => i && typeof i.name === 'string' && !i.sandbox).map((i) => String(i.name));
  // The pod's end on the host is a veth. A bridge (and what is enslaved to one) is shared by many
  // pods; other host interfaces are not the pod's link either — `bandwidth` appends the IFB device
  // it shapes the pod's egress on, which carries no frame of the pod's own.
  const kinds = hostIfs.map((n) => ({ n, info: linkInfo(n) }));
  const own = kinds.filter(({ info }) => info?.kind === 'veth' && !info.master);
  if (!own.length) {
    const seen = kinds.map(({ n, info }) => `${n}: ${info ? `${info.kind ?? 'no kind'}${info.master ? ` in ${info.master}` : ''}` : 'not found'}`).join(', ');
    throw new CniError(E_CONFIG, 'prevResult has no host-side veth of the pod\'s own', `chain wdp-cni after a plugin that gives each pod a veth pair (ptp), not a bridge; host interfaces in prevResult: ${seen || 'none'}`);
  }
  const hostIf = own[0].n;
  const ips: Json[] = Array.isArray(prev.ips) ? prev.ips : [];
  const mine = ips.filter((x) => x && (x.interface === undefined || x.interface === podIdx));
  if (!mine.length) throw new CniError(E_CONFIG, 'prevResult has no addresses for the pod\'s interface');
  const mac = podIdx >= 0 && typeof ifs[podIdx].mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(ifs[podIdx].mac) ? String(ifs[podIdx].mac).toLowerCase() : undefined;
  const pods = mine.map((x) => {
    const ip = String(x.address ?? '').split('/')[0];
    if (isIP(ip) === 0) throw new CniError(E_CONFIG, `prevResult address ${JSON.stringify(x.address)} is not an address/prefix`);
    return mac ? { ip, mac } : { ip };
  });
  const gateways = [...new Set([...mine.map((x) => x.gateway).filter((g): g is string => typeof g === 'string' && isIP(g) !== 0), ...(conf.gateways ?? [])])];
  if (!gateways.length) throw new CniError(E_CONFIG, 'no gateway for the pod: prevResult has none and the configuration lists no gateways');
  return { hostIf, pods, gateways };
}

/** The daemon cannot serve the call now: it does not answer, or it answers 503 (stopping, or its
 * dataplane not running yet). Both are the spec's code 11, a transient condition the runtime
 * retries; only DEL tells them apart (del). */
class DaemonUnavailable extends CniError {
  constructor(readonly answering: boolean, details: string) {
    super(E_TRY_LATER, answering ? 'the wdp daemon is not serving (stopping or starting): try again later' : 'the wdp daemon is not answering', details);
  }
}

async function call(api: Pick<ApiClient, 'call'>, method: string, path: string, body?: unknown): Promise<Json | undefined> {
  try {
    return await api.call(method, path, body === undefined ? undefined : JSON.stringify(body)) as Json;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 0 || e.status === 503)) throw new DaemonUnavailable(e.status === 503, e.message);
    throw e;
  }
}

/** The network's name from the configuration (spec: required, an alphanumeric then
 * alphanumerics, `_`, `.`, `-`): what a port records and a GC names. */
function networkName(conf: Json): string {
  if (typeof conf.name !== 'string' || !CNI_ID_RE.test(conf.name)) throw new CniError(E_CONFIG, 'the network configuration\'s name is missing or not a valid network name', 'an alphanumeric, then alphanumerics, "_", "." or "-"');
  return conf.name;
}

/** This call's attachment: the network, CNI_CONTAINERID and CNI_IFNAME (checked as the spec
 * says they are formed: the error names the variable). */
function attachmentFor(env: NodeJS.ProcessEnv, conf: Json): CniAttachment {
  const containerID = need(env, 'CNI_CONTAINERID'), ifname = need(env, 'CNI_IFNAME');
  if (!CNI_ID_RE.test(containerID)) throw new CniError(E_ENV, 'CNI_CONTAINERID is not a valid container ID', 'an alphanumeric, then alphanumerics, "_", "." or "-"');
  if (!validCniIfname(ifname)) throw new CniError(E_ENV, 'CNI_IFNAME is not a valid interface name', 'at most 15 characters, no "/", ":" or whitespace, not "." or ".."');
  return { network: networkName(conf), containerID, ifname };
}

/** Why the daemon's port `have` is not the one this attachment's ADD makes (undefined: it is). A
 * port saved before attachments were recorded has none: its name (portName) already says which
 * container and interface it is for. */
function differs(have: Json | undefined, a: Attachment, att: CniAttachment): string | undefined {
  if (!have) return 'no such port';
  if (have.ifname !== a.hostIf) return `it is on ${have.ifname}, not ${a.hostIf}`;
  const want = a.pods.map((p) => p.ip).sort().join(','), got = ((have.pods ?? []) as Json[]).map((p) => p.ip).sort().join(',');
  if (want !== got) return `it serves ${got || 'no pods'}, expected ${want}`;
  const rec = have.attachment as CniAttachment | undefined;
  if (rec && !sameAttachment(rec, att)) return `it is attachment ${JSON.stringify(rec)}, not ${JSON.stringify(att)}`;
  return undefined;
}

async function add(env: NodeJS.ProcessEnv, conf: Json, deps: CniDeps): Promise<string> {
  const att = attachmentFor(env, conf), netns = need(env, 'CNI_NETNS');
  const a = attachmentOf(conf, netns, att.ifname, deps.linkInfo);
  const name = portName(att.containerID, att.ifname);
  const api = deps.api(conf);
  if (conf.flushHostAddresses !== false) {
    try { deps.flushAddresses(a.hostIf); } catch (e) { throw new CniError(E_ATTACH, `cannot remove the addresses of ${a.hostIf}`, (e as Error).message); }
  }
  try {
    await call(api, 'POST', '/api/v1/ports', { name, type: 'afpacket', ifname: a.hostIf, role: 'pod', gateways: a.gateways, pods: a.pods, attachment: att, ...(conf.worker !== undefined ? { worker: conf.worker } : {}) });
  } catch (e) {
    if (e instanceof CniError) throw e;
    const err = e as ApiError;
    // an ADD repeated by the runtime: this attachment's port is already there, as this ADD makes it
    if (err.status === 409) {
      const have = await call(api, 'GET', `/api/v1/ports/${name}`).catch(() => undefined);
      const why = differs(have, a, att);
      if (!why) return JSON.stringify({ ...conf.prevResult, cniVersion: conf.cniVersion });
      if (have) throw new CniError(E_ATTACH, `port ${name} exists for this container and interface, but ${why}`, 'DEL the attachment first');
    }
    throw new CniError(E_ATTACH, `the daemon refused port ${name} on ${a.hostIf}`, err.message);
  }
  return JSON.stringify({ ...conf.prevResult, cniVersion: conf.cniVersion });
}

async function del(env: NodeJS.ProcessEnv, conf: Json, deps: CniDeps, log: (s: string) => void): Promise<void> {
  const id = need(env, 'CNI_CONTAINERID'), ifname = need(env, 'CNI_IFNAME');
  const name = portName(id, ifname);
  try {
    await call(deps.api(conf), 'DELETE', `/api/v1/ports/${name}`);
  } catch (e) {
    if (e instanceof DaemonUnavailable && !e.answering) { log(`wdp-cni: ${e.message}; port ${name} is dropped by the daemon once its interface is gone, or by the runtime's next GC`); return; }
    // a daemon that answers but is stopping or starting (503) is there to remove the port once it
    // serves: the DEL fails with code 11 and the runtime retries it
    if (e instanceof CniError) throw e;
    if ((e as ApiError).status === 404) return;
    throw new CniError(E_ATTACH, `the daemon could not remove port ${name}`, (e as Error).message);
  }
}

function needVersion(cmd: string, conf: Json, from: string): void {
  if (cmpVersion(conf.cniVersion, from) < 0) throw new CniError(E_INCOMPATIBLE, `${cmd} needs CNI version ${from} or later, the configuration says ${conf.cniVersion}`);
}

/** STATUS: whether an ADD could be served now. The daemon's health check answers 200 when it
 * forwards; a daemon that does not answer, or answers otherwise, makes the network not ready. */
async function status(conf: Json, deps: CniDeps): Promise<void> {
  try {
    await call(deps.api(conf), 'GET', '/healthz');
  } catch (e) {
    const why = e instanceof CniError ? `${e.message}: ${e.details}` : (e as Error).message;
    throw new CniError(E_UNAVAILABLE, 'the wdp daemon cannot attach pods now', why);
  }
}

async function check(env: NodeJS.ProcessEnv, conf: Json, deps: CniDeps): Promise<void> {
  needVersion('CHECK', conf, CHECK_FROM);
  const netns = need(env, 'CNI_NETNS');
  const att = attachmentFor(env, conf);
  const a = attachmentOf(conf, netns, att.ifname, deps.linkInfo);
  const name = portName(att.containerID, att.ifname);
  let have: Json | undefined;
  try { have = await call(deps.api(conf), 'GET', `/api/v1/ports/${name}`); } catch (e) {
    if (e instanceof CniError) throw e;
    throw new CniError(E_CHECK, `port ${name} is not attached`, (e as Error).message);
  }
  const why = differs(have, a, att);
  if (why) throw new CniError(E_CHECK, `port ${name} is not as ADD made it: ${why}`);
}

/** GC: the attachments the runtime still holds valid, from `cni.dev/valid-attachments` (libcni
 * also sends it as `cni.dev/attachments`, the name an early text of the spec used). `null` is the
 * empty list: libcni marshals Go's nil slice so, which is what a runtime that builds the list by
 * appending (CRI-O's ocicni) passes for a network none of its pods is on any more. Refused whole (code 7) when missing or malformed: a
 * list misread would remove live pods' ports. */
function validAttachments(conf: Json): Array<{ containerID: string; ifname: string }> {
  const a: unknown = conf['cni.dev/valid-attachments'], b: unknown = conf['cni.dev/attachments'];
  const list = a ?? b ?? (a === null || b === null ? [] : undefined);
  if (!Array.isArray(list)) throw new CniError(E_CONFIG, 'GC needs cni.dev/valid-attachments: a list of { containerID, ifname }', 'nothing was removed');
  return list.map((x: unknown, i) => {
    const o = x as Json | null;
    if (!o || typeof o !== 'object' || typeof o.containerID !== 'string' || typeof o.ifname !== 'string') throw new CniError(E_CONFIG, `cni.dev/valid-attachments[${i}] is not { containerID, ifname }`, 'nothing was removed');
    return { containerID: o.containerID, ifname: o.ifname };
  });
}

async function gc(conf: Json, deps: CniDeps, log: (s: string) => void): Promise<void> {
  needVersion('GC', conf, STATUS_GC_FROM);
  const network = networkName(conf);
  const valid = validAttachments(conf);
  let r: Json | undefined;
  try { r = await call(deps.api(conf, GC_TIMEOUT_MS), 'POST', '/api/v1/cni/gc', { network, validAttachments: valid }); } catch (e) {
    if (e instanceof CniError) throw e;
    const status = (e as ApiError).status;
    // The route never answers 404 itself: this daemon predates GC. It recorded no attachment
    // with its ports (both came in one change), and a port without one is never collected, so
    // there is nothing GC could remove: success, as the spec's "remove what you can".
    if (status === 404) { log(`wdp-cni: the wdp daemon predates CNI GC (no POST /api/v1/cni/gc): network ${network} not collected — its ports record no attachment, so none of them is stale to GC; upgrade the daemon for GC`); return; }
    throw new CniError(E_GC, `the daemon could not GC network ${network}`, (e as Error).message);
  }
  const removed = (r?.removed ?? []) as string[], failed = (r?.failed ?? []) as Array<{ name: string; error: string }>;
  if (removed.length) log(`wdp-cni: GC of network ${network} removed ports ${removed.join(', ')}`);
  if (failed.length) throw new CniError(E_GC, `GC of network ${network}: ${failed.length} stale port(s) could not be removed`, failed.map((f) => `${f.name}: ${f.error}`).join('; '));
}

function versionAsked(stdin: string): string {
  try { const v = (JSON.parse(stdin) as Json | null)?.cniVersion; if (typeof v === 'string' && v) return v; } catch { /* no or bad stdin */ }
  return SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1];
}

/** One plugin invocation, exactly as a runtime makes it: the environment, the config on stdin.
 * Never throws: errors become the spec's error JSON and a non-zero exit. */
export async function runCni(env: NodeJS.ProcessEnv, stdin: string, deps: CniDeps = defaultDeps, log: (s: string) => void = () => undefined): Promise<CniOutcome> {
  let version = '1.0.0';
  try {
    const cmd = env.CNI_COMMAND;
    if (!cmd) {
      // run by hand, not by a runtime: say what this is, as the reference plugins' skel does
      log('CNI wdp-cni plugin: attaches pods to the wdp dataplane (docs/running.md, "Pods that come and go")');
      log(`CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}`);
      return { stdout: '', exitCode: 0 };
    }
    if (cmd === 'VERSION') {
      // the answer's cniVersion is the one on stdin ({"cniVersion": ...}), the list does not depend on it
      return { stdout: JSON.stringify({ cniVersion: versionAsked(stdin), supportedVersions: SUPPORTED_VERSIONS }), exitCode: 0 };
    }
    if (!['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'].includes(cmd)) throw new CniError(E_ENV, `CNI_COMMAND ${JSON.stringify(cmd)} is not supported`, 'ADD, DEL, CHECK, STATUS, GC and VERSION are');
    const conf = parseConf(stdin, cmd === 'DEL' || cmd === 'GC');
    version = conf.cniVersion;
    if (cmd === 'ADD') return { stdout: await add(env, conf, deps), exitCode: 0 };
    if (cmd === 'DEL') await del(env, conf, deps, log);
    else if (cmd === 'CHECK') await check(env, conf, deps);
    else if (cmd === 'STATUS') { needVersion(cmd, conf, STATUS_GC_FROM); await status(conf, deps); }
    else await gc(conf, deps, log);
    return { stdout: '', exitCode: 0 };
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(E_ATTACH, (e as Error).message);
    return { stdout: JSON.stringify({ cniVersion: version, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) }), exitCode: 1 };
  }
}
