// `wdp trace --live` prints each traced packet as a few lines (src/cli/observe.ts formatLiveEvent):
// a translated packet as its header before and after, one the core sent on unchanged (to the host,
// routed) as its output alone, said not rewritten.
import test from 'ava';
import { formatLiveEvent } from '../dist/src/cli/observe.js';

const event = (output) => ({
  time: '2026-12-06T21:20:00.123Z', worker: 0, inPort: 'pods', verdict: 'forward', reason: 'forward_dnat', stages: ['parse', 'lookup'],
  conntrack: 'none', input: { proto: 'TCP', src: '10.244.1.5', sport: 40000, dst: '10.96.0.10', dport: 80 }, output, outPort: 'pods',
});

test('a translated packet: its header before => after, with the out port', (t) => {
  const text = formatLiveEvent(event({ src: '10.244.1.5', sport: 40000, dst: '10.244.2.7', dport: 8080 }));
  t.regex(text, /^ {2}rewritten: {2}10\.244\.1\.5:40000 -> 10\.96\.0\.10:80 {2}=> {2}10\.244\.1\.5:40000 -> 10\.244\.2\.7:8080 {2}out port pods$/m);
});

test('a packet sent on unchanged: its output once, said not rewritten', (t) => {
  const text = formatLiveEvent(event({ src: '10.244.1.5', sport: 40000, dst: '10.96.0.10', dport: 80 }));
  t.regex(text, /^ {2}output: {5}10\.244\.1\.5:40000 -> 10\.96\.0\.10:80 \(not rewritten\) {2}out port pods$/m);
  t.notRegex(text, /rewritten: /);
});
