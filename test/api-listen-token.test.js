// One rule for when the control API needs a token (src/api/listen.ts tokenRequiredReason): the
// config check (before any port opens) and createControlPlane (which also runs without a config
// file) refuse exactly the same listen addresses, saying why.
import test from 'ava';
import { parseConfig } from '../dist/src/daemon/config.js';
import { createControlPlane } from '../dist/src/api/server.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';

const base = { node: { name: 'n1', addresses: ['192.168.1.3'] }, ports: [{ name: 'up', type: 'afpacket', ifname: 'eth1', role: 'uplink' }] };
const WHY = /is not a loopback address or a unix socket: anyone who can reach it could change the dataplane/;

for (const [listen, refused, unbindable] of [['0.0.0.0:0', true], ['[::]:0', true], ['192.168.1.3:0', true, 'not on this machine'], ['127.0.0.1:0', false], ['[::1]:0', false], ['localhost:0', false], ['127.0.0.2:0', false]]) {
  test(`api.listen ${listen} without a token: ${refused ? 'refused by both' : 'accepted by both'}; with a token accepted by both`, async (t) => {
    const cfg = (token) => () => parseConfig({ ...base, api: { listen, ...(token ? { token } : {}) } });
    const start = async (token) => (await createControlPlane({ dataplane: new LocalDataplane(), listen, healthz: false, token })).close();
    if (refused) {
      t.regex(t.throws(cfg()).message, /api\.token: required when api\.listen/);
      t.regex(t.throws(cfg()).message, WHY);
      const e = await t.throwsAsync(start());
      t.regex(e.message, new RegExp(`refusing to listen on ${listen.replace(/[[\].]/g, '\\$&')} without a token`));
      t.regex(e.message, WHY);
      t.regex(e.message, /Configure api\.token, or listen on 127\.0\.0\.1 or a unix socket/);
    } else {
      t.notThrows(cfg());
      await t.notThrowsAsync(start());
    }
    t.notThrows(cfg('a-token-of-16-chars'));
    if (!unbindable) await t.notThrowsAsync(start('a-token-of-16-chars'));
  });
}
