// The host port's config on one node (host-port.mjs): the ConfigMap's template, which leaves out
// what differs per node, completed with the node's network as its NIC had it. No side effects:
// host-port.mjs reads the NIC and runs the daemon; test walk-node-daemonset-manifests checks the
// completed template with the daemon's own config loader.
import { isIP } from 'node:net';
import { canonicalAddr } from '../../dist/src/util/addr.js';

/** The template's host port and the uplink it is bridged with (its `uplink:`, else the only
 * uplink): { host, uplink }. Throws saying what is missing. */
export function hostPortOf(template) {
  const ports = Array.isArray(template?.ports) ? template.ports : [];
  const host = ports.find((p) => p?.role === 'host');
  if (!host) throw new Error('the template has no host port (role: host)');
  const uplinks = ports.filter((p) => p?.role === 'uplink');
  const uplink = host.uplink ? uplinks.find((p) => p.name === host.uplink) : uplinks.length === 1 ? uplinks[0] : undefined;
  if (!uplink?.ifname) throw new Error('the host port\'s uplink is not an uplink port with an ifname');
  return { host, uplink };
}

/** "addr/plen" with the address as `ip` prints it (IPv6 compressed, lowercase: RFC 5952). */
export const canonicalCidr = (cidr) => {
  const [a, plen] = String(cidr).split('/');
  return `${isIP(a) ? canonicalAddr(a) : a}/${plen}`;
};

/** 4 or 6: the family of an address or "addr/plen". */
export const family = (a) => (isIP(String(a).split('/')[0]) === 6 ? 6 : 4);

/** A copy of `template` with the node's network `net` ({ addresses: ["addr/plen"], gateways:
 * [ip] }, the NIC's) filled in where the template leaves it out: the host port's hostAddresses,
 * a default hostRoute per gateway's family, and a route of that family on the uplink via the
 * gateway (backends on other nodes: the router). What the template sets stays. */
export function completeTemplate(template, net) {
  const t = structuredClone(template);
  const { host, uplink } = hostPortOf(t);
  if (!host.hostAddresses?.length) host.hostAddresses = [...net.addresses];
  host.hostRoutes ??= [];
  t.routes ??= [];
  for (const gw of net.gateways) {
    if (!host.hostRoutes.some((r) => r.prefix === 'default' && family(r.via) === family(gw))) host.hostRoutes.push({ prefix: 'default', via: gw });
    const any = family(gw) === 6 ? '::/0' : '0.0.0.0/0';
    if (!t.routes.some((r) => r.prefix === any)) t.routes.push({ prefix: any, port: uplink.name, via: gw });
  }
  return t;
}
