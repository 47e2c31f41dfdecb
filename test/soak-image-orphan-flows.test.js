// What bench/soak.mjs found at clean restarts under churn: a TCP connection outlives its Service
// (deleted while the connection was open: the flow is kept on its pod, docs/core.md), the stop
// writes the table image and the flow checkpoint, and the control plane's catch-up over the image
// counted that flow as `unmatched` — "flows forwarded from the table image name no Service of the
// restored state", a warning meant for a restored state that lacks a Service the image had. The
// flow had no Service in the image either: it is not unmatched. A flow whose Service the image had
// and the restored state lacks still is (test core-udp-cleanup).
import test from 'ava';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { ControlPlaneCore } from '../dist/src/api/controlplane.js';
import { exportFlows, importFlows } from '../dist/src/core/flow-export.js';
import { captureImage, decodeImage, ImageResume } from '../dist/src/core/table-image.js';
import { nodeConfigObject, serviceObject, sliceObject } from '../dist/src/bench/control.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';

const PORTS = [{ index: 0, name: 'uplink', mac: '02:00:00:00:00:aa' }, { index: 1, name: 'pods', mac: '02:77:64:70:00:01' }];
const WHO = { worker: 0, workers: 1, revision: 'r:1', inputsHash: 'h1', announced: [] };
const CLIENT = '192.168.200.7';
const mk = (name, vip) => ({ namespace: 'x', name, clusterIP: vip, portName: 'http', proto: 'TCP', port: 80, targetPort: 8080, endpoints: [{ addr: `10.128.0.${vip.split('.')[3]}`, port: 8080 }] });
const keep = mk('keep', '10.96.0.11'), gone = mk('gone', '10.96.0.12');
const tcp = (s, flags, seq, ack) => frame({ src: CLIENT, dst: s.clusterIP, proto: 'TCP', sport: 40000, dport: 80, flags, seq, ack });
const back = (s, flags, seq, ack) => frame({ src: s.endpoints[0].addr, dst: CLIENT, proto: 'TCP', sport: 8080, dport: 40000, flags, seq, ack });

test('a TCP flow whose Service was deleted before a clean stop: not unmatched at the table image\'s catch-up, still on its pod', async (t) => {
  const a = new LocalDataplane({ flows: 256 });
  const cpA = new ControlPlaneCore(a, null);
  await cpA.apply([nodeConfigObject(), ...[keep, gone].flatMap((s) => [serviceObject(s), sliceObject(s)])]);
  for (const s of [keep, gone]) {
    t.is(a.core.run([tcp(s, 'S', 1)], 1000, 0)[0].reason, 'fwd_nat');
    t.is(a.core.run([back(s, 'SA', 9, 2)], 1000, 1)[0].reason, 'fwd_reply');
    t.is(a.core.run([tcp(s, 'A', 2, 10)], 1000, 0)[0].reason, 'fwd_nat');
  }
  // the Service is deleted under the open connection: its flow goes on to its pod
  await cpA.remove([serviceObject(gone), sliceObject(gone)]);
  const [kept] = a.core.run([tcp(gone, 'A', 2, 10)], 1001, 0);
  t.is(parseFrame(kept.frame).dst, gone.endpoints[0].addr);
  // a clean stop: image and flows of this state; the restart restores the same state
  const image = captureImage(a.core, WHO), saved = exportFlows(a.core, PORTS, 1002);
  const b = new LocalDataplane({ flows: 256 });
  const { meta, payload } = decodeImage(image);
  const resume = new ImageResume(b.core, meta, payload);
  importFlows(b.core, saved, PORTS, 500, 50, resume.ids());
  await new ControlPlaneCore(b, null).apply([nodeConfigObject(), serviceObject(keep), sliceObject(keep)]);
  const r = resume.afterApply();
  t.is(r.unmatched, 0, 'the flow had no Service in the image either');
  const flows = b.core.flows({}, 1100);
  t.is(flows.length, 2);
  t.is(flows.find((f) => f.vip === gone.clusterIP).frontendId, 0);
  const [r1] = b.core.run([tcp(gone, 'A', 2, 10)], 1100, 0);
  t.is(parseFrame(r1.frame).dst, gone.endpoints[0].addr, 'kept on its pod');
  const [r2] = b.core.run([tcp(keep, 'A', 2, 10)], 1100, 0);
  t.is(r2.reason, 'fwd_nat');
});
