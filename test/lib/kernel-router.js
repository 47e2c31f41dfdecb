// The kernel reference beside a wdp topology: a client (kc), a Linux router (kr, forwarding on) and
// a server (ks) in three namespaces of `lab`, IPv4 and IPv6, the router's own packets to the
// Service CIDRs (10.96.0.0/16, fd00:96::/64) routed to the server first (a node's default route:
// OUTPUT's DNAT needs a route before it). The caller loads kube-proxy-shaped nftables rules in kr.
//   kc 10.9.0.2, fd09::2 -- eth0 kr 10.9.0.1, fd09::1 | eth1 10.9.1.1, fd09:1::1 -- ks 10.9.1.5, fd09:1::5
export function kernelRouterNamespaces(lab) {
  const kc = lab.namespace('kc'), kr = lab.namespace('kr'), ks = lab.namespace('ks');
  lab.veth(kc, 'eth0', kr, 'eth0');
  lab.veth(kr, 'eth1', ks, 'eth0');
  lab.sysctl(kr, 'net.ipv4.ip_forward', '1', ['net.ipv6.conf.all.forwarding', '1']);
  for (const [ns, dev, a] of [[kc, 'eth0', '10.9.0.2/24'], [kc, 'eth0', 'fd09::2/64'], [kr, 'eth0', '10.9.0.1/24'], [kr, 'eth0', 'fd09::1/64'],
    [kr, 'eth1', '10.9.1.1/24'], [kr, 'eth1', 'fd09:1::1/64'], [ks, 'eth0', '10.9.1.5/24'], [ks, 'eth0', 'fd09:1::5/64']]) lab.addr(ns, dev, a);
  lab.route(kc, 'default', '10.9.0.1'); lab.route(kc, 'default', 'fd09::1');
  lab.route(ks, 'default', '10.9.1.1'); lab.route(ks, 'default', 'fd09:1::1');
  lab.route(kr, '10.96.0.0/16', '10.9.1.5'); lab.route(kr, 'fd00:96::/64', 'fd09:1::5');
  return { kc, kr, ks };
}
