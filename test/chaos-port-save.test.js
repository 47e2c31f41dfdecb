// A runtime port add whose ports.json cannot be written (the state directory's disk full) is not
// acknowledged: it was answered 201 with only a log line, and the restart came back without the
// port (found by the chaos driver: a filesystem failing read-only, then a port add). Now the add
// is a 500 naming the failure, nothing added; with space again an add is saved and survives a
// SIGKILL. The state directory is a tmpfs in the rig's own mount namespace (test/lib/chaos.js).
import test from 'ava';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { rootGate } from './lib/root-gate.js';
import { ChaosRig } from './lib/chaos.js';

const { serial } = rootGate(test, { tools: ['unshare', 'nsenter', 'mount'] });

serial('a port add that cannot be saved is refused, nothing added; a saved one survives a SIGKILL', async (t) => {
  const rig = await ChaosRig.create({ fs: 'tmpfs', sizeMiB: 16 });
  try {
    let d = rig.start();
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
    await rig.kill(d, 'kill');
    d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    const names = (await rig.req('GET', '/api/v1/ports')).json.items.filter((p) => p.origin === 'api').map((p) => p.name);
    t.deepEqual(names, ['pb']);
  } finally { await rig.teardown(); }
});
