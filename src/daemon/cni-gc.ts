// CNI GC (spec 1.1.0) on the daemon's side: `POST /api/v1/cni/gc` with the network's name and the
// attachments the runtime still holds valid ({ network, validAttachments: [{ containerID, ifname }] },
// what the plugin read from `cni.dev/valid-attachments`). Every runtime port whose recorded
// attachment (src/cni/attachment.ts, saved with the port) is of that network and not in the list
// is removed as a CNI DEL would remove it (PortManager.removeWhere: closed in its workers, its
// learned neighbours forgotten, the node config re-programmed). Ports of other networks, ports
// without an attachment (config-file ports, ports added by hand, ports saved before wdp recorded
// attachments) are never touched. A port that fails to go does not stop the others; the answer
// lists both, and the plugin reports the failures to the runtime, which GCs again later.
import { CNI_ID_RE, attachmentKey, type CniAttachment } from '../cni/attachment.js';

/** What a GC reads of a port (the port manager's ManagedPort): who made it, and the attachment
 * its ADD recorded. */
export interface GcPort { origin: string; config: { attachment?: CniAttachment } }

export interface CniGcRequest { network: string; valid: Set<string> }

export interface RemovedPorts { removed: string[]; failed: Array<{ name: string; error: string }> }

/** What a GC needs of the port manager: its runtime ports, removed in its queue. */
export interface GcPorts<P extends GcPort = GcPort> {
  removeWhere(pick: (runtimePorts: P[]) => P[], why: string): Promise<RemovedPorts>;
}

/** A GC request body, checked whole: any problem refuses it (nothing is removed on a list that is
 * only partly understood — a misread entry would take a live pod's port). Throws with the
 * problems listed. */
export function parseCniGcRequest(body: unknown): CniGcRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('body must be an object { network, validAttachments: [{ containerID, ifname }] }');
  const b = body as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(b)) if (k !== 'network' && k !== 'validAttachments') problems.push(`${k}: unknown field`);
  if (typeof b.network !== 'string' || !CNI_ID_RE.test(b.network)) problems.push('network: must be a CNI network name (the network configuration\'s name)');
  const valid = new Set<string>();
  if (!Array.isArray(b.validAttachments)) problems.push('validAttachments: must be a list of { containerID, ifname } (an empty list: no attachment is valid)');
  else {
    b.validAttachments.forEach((a: unknown, i) => {
      const o = a && typeof a === 'object' && !Array.isArray(a) ? a as Record<string, unknown> : undefined;
      if (!o || typeof o.containerID !== 'string' || typeof o.ifname !== 'string' || Object.keys(o).some((k) => k !== 'containerID' && k !== 'ifname')) {
        problems.push(`validAttachments[${i}]: must be { containerID, ifname } (strings)`);
        return;
      }
      // an ID or name no ADD could have recorded matches no port: harmless, and kept out of the
      // refusal (the runtime's list is its own, wdp only looks up its ports in it)
      valid.add(attachmentKey({ containerID: o.containerID, ifname: o.ifname }));
    });
  }
  if (problems.length) throw new Error(`invalid CNI GC request:\n  ${problems.join('\n  ')}`);
  return { network: b.network as string, valid };
}

/** The runtime ports a GC of `req` removes: recorded for its network, attachment not valid. */
export function staleAttachmentPorts<P extends GcPort>(runtimePorts: P[], req: CniGcRequest): P[] {
  return runtimePorts.filter((p) => {
    const a = p.origin === 'api' ? p.config.attachment : undefined;
    return !!a && a.network === req.network && !req.valid.has(attachmentKey(a));
  });
}

/** Runs a GC: removes the stale ports of the network (in the port manager's queue, so the
 * choice is made on the ports as they are when it runs). */
export function cniGc<P extends GcPort>(ports: GcPorts<P>, body: unknown): Promise<RemovedPorts & { network: string }> {
  const req = parseCniGcRequest(body);
  return ports.removeWhere((rt) => staleAttachmentPorts(rt, req), `CNI GC of network ${req.network}: its attachment is not valid any more`)
    .then((r) => ({ network: req.network, ...r }));
}

