// A runtime port add whose ports.json cannot be written (the state directory's disk full) is not
// acknowledged: it was answered 201 with only a log line, and the restart came back without the
// port (found by the chaos driver: a filesystem failing read-only, then a port add). Now the add
// is a 500 naming the failure, nothing added; with space again an add is saved and survives a
// SIGKILL. A remove whose ports.json cannot be written is refused the same way (it was answered
// 200: the port was gone from the running daemon and still in ports.json, so a restart brought it
// back): a 500 naming the failure, the port still running and saved; with space again the remove
// is saved and a SIGKILL'd restart comes back without it. The state directory is a tmpfs in the
// rig's own mount namespace (test/lib/chaos.js).
import test from 'ava';
import { readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { rootGate } from './lib/root-gate.js';
import { ChaosRig } from './lib/chaos.js';
import { systemTool } from '../dist/src/util/system-tool.js';

const { serial } = rootGate(test, { tools: ['unshare', 'nsenter', 'mount'] });
// (from the system's directories: npm puts node_modules/.bin first in PATH, where a package's `nft` is not nftables)
const NFT = systemTool('nft');
const withNft = NFT ? serial : (title, ...rest) => test.skip(`${title} (skipped: needs nft, which is not installed)`, ...rest);

/** The daemon SIGKILLed and started again: the names of its runtime ports. */
async function runtimePortsAfterKill(t, rig, d) {
  await rig.kill(d, 'kill');
  const again = rig.start();
  t.is(await rig.ready(again), 'ready', again.stderr());
  return (await rig.req('GET', '/api/v1/ports')).json.items.filter((p) => p.origin === 'api').map((p) => p.name);
}

serial('a port add that cannot be saved is refused, nothing added; a saved one survives a SIGKILL', async (t) => {
  const rig = await ChaosRig.create({ fs: 'tmpfs', sizeMiB: 16 });
  try {
    const d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    const { bavail, bsize } = statfsSync(rig.path());
    writeFileSync(rig.path('filler'), Buffer.alloc(bavail * bsize));
    const port = (name) => ({ name, type: 'tap', ifname: `wdpc${process.pid % 10000}${name}`.slice(0, 15), role: 'pod' });
    const r = await rig.req('POST', '/api/v1/ports', port('pa'));
    t.is(r.status, 500, r.text);
    t.regex(r.text, /saving the runtime ports failed \(nothing added\): ENOSPC/);
    t.is((await rig.req('GET', '/api/v1/ports/pa')).status, 404, 'not added');
    rmSync(rig.path('filler'));
    t.is((await rig.req('POST', '/api/v1/ports', port('pb'))).status, 201);
    t.deepEqual(await runtimePortsAfterKill(t, rig, d), ['pb']);
  } finally { await rig.teardown(); }
});

withNft('a port remove that cannot be saved is refused, the port still running, saved and the kernel kept off it; a saved remove survives a SIGKILL', async (t) => {
  const rig = await ChaosRig.create({ fs: 'tmpfs', sizeMiB: 16 });
  try {
    const d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    // ra: a pod's veth (the kernel kept off it by a drop chain while it is a port); rb: a TAP
    const veth = `wdpv${process.pid % 10000}`;
    rig.lab.veth(rig.ns, `${veth}a`, rig.ns, `${veth}b`);
    t.is((await rig.req('POST', '/api/v1/ports', { name: 'ra', type: 'afpacket', ifname: `${veth}a`, role: 'pod' })).status, 201);
    t.is((await rig.req('POST', '/api/v1/ports', { name: 'rb', type: 'tap', ifname: `wdpc${process.pid % 10000}rb`, role: 'pod' })).status, 201);
    const saved = () => JSON.parse(readFileSync(rig.path('ports.json'), 'utf8')).ports.map((p) => p.name);
    const chained = () => rig.lab.exec(rig.ns, NFT, ['list', 'chain', 'netdev', 'wdp', `in_${veth}a`]).code === 0;
    t.deepEqual(saved(), ['ra', 'rb']);
    t.true(chained(), 'the kernel is kept off the port');
    const { bavail, bsize } = statfsSync(rig.path());
    writeFileSync(rig.path('filler'), Buffer.alloc(bavail * bsize));
    const r = await rig.req('DELETE', '/api/v1/ports/ra');
    t.is(r.status, 500, r.text);
    t.regex(r.text, /saving the runtime ports failed \(nothing removed\): ENOSPC/);
    const still = await rig.req('GET', '/api/v1/ports/ra');
    t.is(still.status, 200, 'still there');
    t.is(still.json.state, 'up', 'still open in its worker');
    t.deepEqual(saved(), ['ra', 'rb'], 'still saved');
    t.true(chained(), 'the kernel still kept off it');
    rmSync(rig.path('filler'));
    t.is((await rig.req('DELETE', '/api/v1/ports/ra')).status, 200);
    t.deepEqual(saved(), ['rb']);
    t.false(chained(), 'the interface is the kernel\'s again');
    t.deepEqual(await runtimePortsAfterKill(t, rig, d), ['rb']);
  } finally { await rig.teardown(); }
});
