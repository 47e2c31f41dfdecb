// One Service (10.96.0.10:80) over two pods behind their own ports, with the NodeConfig that
// resolves them: the smallest state that programs a translated backend (worker tests).
export const twoPodObjects = [
  { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' }, spec: { nodeName: 'n', neighbours: [
    { address: '10.244.1.11', port: 1, mac: '02:aa:00:00:00:0b', localMac: '02:dd:00:00:00:01' },
    { address: '10.244.1.12', port: 2, mac: '02:aa:00:00:00:0c', localMac: '02:dd:00:00:00:02' },
  ] } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ addresses: ['10.244.1.11'], conditions: { ready: true } }, { addresses: ['10.244.1.12'], conditions: { ready: true } }] },
];
