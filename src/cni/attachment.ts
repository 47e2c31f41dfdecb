// A CNI attachment as wdp records it on the port a CNI ADD created: the network (the network
// configuration's `name`), the container (CNI_CONTAINERID) and its interface (CNI_IFNAME). The
// spec identifies an attachment by (containerID, ifname); the network tells a GC of one network
// (which lists only that network's valid attachments) from the ports of another. Shared by the
// plugin (src/cni/plugin.ts) and the daemon (the port config, src/daemon/config.ts; GC,
// src/daemon/cni-gc.ts): no dependencies, the plugin loads it on every pod start.

export interface CniAttachment { network: string; containerID: string; ifname: string }

/** The spec's rule for a network name and a container ID: an alphanumeric, then alphanumerics,
 * `_`, `.` or `-` (CNI SPEC.md, "Attachment parameters" and "Network configuration"; libcni checks
 * the same). The length cap is wdp's: what it records must stay bounded. */
export const CNI_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,1023}$/;

/** libcni's rule for CNI_IFNAME (the spec says only that a plugin refuses a name it cannot use):
 * at most 15 characters (IFNAMSIZ), no `/`, `:` or whitespace, not `.` or `..`. */
export function validCniIfname(s: string): boolean {
  return /^[^/:\s]{1,15}$/.test(s) && s !== '.' && s !== '..';
}

export const sameAttachment = (a: CniAttachment, b: CniAttachment): boolean =>
  a.network === b.network && a.containerID === b.containerID && a.ifname === b.ifname;

/** The key of an attachment within one network: the spec's (containerID, ifname) tuple. */
export const attachmentKey = (a: { containerID: string; ifname: string }): string => `${a.containerID}\0${a.ifname}`;
