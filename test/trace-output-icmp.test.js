// A dry-run trace whose packet is answered (reject) shows the answer's addresses, and ports only
// when the answer has them: a UDP datagram to a ClusterIP port the Service does not define is
// answered with an ICMP port unreachable, whose type/code and checksum words were shown as ports
// (`wdp trace`: "rewritten: 10.0.0.1:771 -> 10.0.0.2:4482"), and so is a TCP SYN to a Service
// without endpoints (kube-proxy's bare reject); a forwarded packet keeps its rewritten ports.
import test from 'ava';
import { startControlPlane } from './lib/server.js';

const SVC = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIP: 10.96.0.10, ports: [{ name: http, port: 80, targetPort: 8080 }] }
`;

const NODE = `apiVersion: wdp.io/v1alpha1
kind: NodeConfig
metadata: { name: node-a }
spec:
  nodeName: node-a
  nodeAddresses: [192.168.10.11]
  neighbours: [{ address: 10.244.1.10, port: 1, mac: "02:42:0a:f4:01:0a", localMac: "02:00:00:00:00:01" }]
`;
const SLICE = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
endpoints: [{ addresses: [10.244.1.10] }]
ports: [{ name: http, port: 8080 }]
`;

test('trace output: an ICMP answer (to UDP or TCP) has no ports, a forwarded packet its rewritten ones', async (t) => {
  const { req } = await startControlPlane(t);
  t.is((await req('POST', '/api/v1/apply', SVC, { 'content-type': 'application/yaml' })).status, 200);
  const udp = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'UDP', sport: 40000, dport: 80 }));
  t.is(udp.status, 200, udp.text);
  t.is(udp.json.verdict, 'reject', udp.text);
  t.is(udp.json.output.hex.slice(28 * 2 - 10, 28 * 2 - 8), '01', 'the answer is ICMP (IPv4 protocol 1)');
  t.is(udp.json.output.sport, undefined, udp.text);
  t.is(udp.json.output.dport, undefined, udp.text);
  const tcp = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 }));
  t.is(tcp.json.verdict, 'reject', tcp.text);
  t.is(tcp.json.reason, 'reject_no_endpoints', tcp.text);
  t.is(tcp.json.output.sport, undefined, tcp.text);
  t.is(tcp.json.output.dport, undefined, tcp.text);
  t.is((await req('POST', '/api/v1/apply', NODE + '---\n' + SLICE, { 'content-type': 'application/yaml' })).status, 200);
  const fwd = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 }));
  t.is(fwd.json.verdict, 'forward', fwd.text);
  t.deepEqual([fwd.json.output.src, fwd.json.output.sport, fwd.json.output.dst, fwd.json.output.dport], ['10.0.0.2', 40000, '10.244.1.10', 8080], fwd.text);
});
