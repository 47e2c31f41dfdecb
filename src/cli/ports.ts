// `wdp get ports` and `wdp port add|remove`: the daemon's ports API (src/api/ports-routes.ts).
//   wdp port add -f port.yaml                     one port object, as in the config file's ports:
//   wdp port add --name pod-x --type afpacket --ifname veth12 --role pod --gateway 10.244.0.1 \
//                --pod 10.244.1.20[=02:aa:..]      the same from flags
//   wdp port remove pod-x
import { Option, type Command } from 'commander';
import { readInputFile } from '../util/input-file.js';
import { parseSingleDocument } from '../model/load.js';
import type { ApiClient } from './client.js';
import { table } from './format.js';

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function portsTable(items: Raw[], wide: boolean): string {
  const head = ['NAME', 'INDEX', 'TYPE', 'IFNAME', 'ROLE', 'ORIGIN', 'STATE', 'KIND', 'MAC', 'MTU', 'RX', 'TX'];
  const rows = items.map((p) => [p.name, p.index, p.type, p.netns ? `${p.ifname}@${p.netns}` : p.ifname, p.role, p.origin, p.state ?? '-', p.kind, p.mac,
    p.mtu ?? '-', p.stats?.rxPackets ?? '-', p.stats?.txPackets ?? '-']);
  if (!wide) return table(head, rows);
  // ATTACHMENT: the CNI attachment a plugin's ADD recorded (network/container/interface), what a GC goes by
  const attachment = (a: Raw | undefined) => (a ? `${a.network}/${a.containerID}/${a.ifname}` : '-');
  return table([...head, 'WORKER', 'GATEWAYS', 'PODS', 'ATTACHMENT'], rows.map((r, i) => [...r, items[i].worker,
    items[i].gateways.join(',') || '-', items[i].pods.map((x: Raw) => x.ip).join(',') || '-', attachment(items[i].attachment)]));
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** A port file is one small object. */
const MAX_PORT_FILE = 1 << 20;

export function registerPortCommands(program: Command, client: (cmd: Command) => ApiClient, print: (data: unknown, output: string | undefined, human: () => string) => void): void {
  const port = program.command('port').description('add or remove a dataplane port while the daemon runs (what the CNI plugin does per pod)');
  port.command('add').description('attach an interface: -f FILE (one port, YAML/JSON) or the flags')
    .option('-f, --filename <file>', 'a port object as in the config file\'s ports: ("-" for stdin)')
    .option('--name <name>', 'the port\'s name (lowercase, unique)').option('--ifname <ifname>', 'the interface (<= 15 characters): an existing one for afpacket, the one to create for tap')
    .addOption(new Option('--type <type>', 'afpacket: an existing interface (a pod\'s veth); tap: a TAP the daemon creates').choices(['afpacket', 'tap']))
    .addOption(new Option('--role <role>', 'pod: neighbours are learned on it; uplink: clients and the network').choices(['pod', 'uplink']).default('pod'))
    .option('--gateway <ip>', 'an address answered on this port (repeatable)', collect)
    .option('--pod <ip[=mac]>', 'a pod behind this port (repeatable)', collect)
    .option('--netns <name>', 'TAP: create it inside this network namespace')
    .option('--worker <n>', 'the worker that owns the port')
    .addOption(new Option('-o, --output <format>', 'output format (default: one line)').choices(['json', 'yaml']))
    .action(async (o, cmd: Command) => {
      let body: Raw;
      const flags = ['name', 'type', 'ifname', 'gateway', 'pod', 'netns', 'worker'].filter((k) => o[k] !== undefined);
      if (o.filename) {
        if (flags.length) throw new Error('port add takes -f PORT.yaml or the port flags, not both');
        const text = readInputFile(o.filename === '-' ? 0 : o.filename, MAX_PORT_FILE);
        const doc = parseSingleDocument(text, o.filename === '-' ? '<stdin>' : o.filename);
        if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${o.filename}: expected one port object (name, type, ifname, role, ...)`);
        body = doc as Raw;
      } else {
        const missing = ['name', 'type', 'ifname'].filter((k) => o[k] === undefined);
        if (missing.length) throw new Error(`port add needs -f PORT.yaml, or --name, --type and --ifname (missing: ${missing.map((k) => `--${k}`).join(', ')})`);
        body = { name: o.name, type: o.type, ifname: o.ifname, role: o.role, gateways: o.gateway ?? [] };
        if (o.pod) body.pods = (o.pod as string[]).map((p) => { const [ip, mac] = p.split('='); return mac ? { ip, mac } : { ip }; });
        if (o.netns) body.netns = o.netns;
        if (o.worker !== undefined) {
          if (!/^\d{1,9}$/.test(o.worker)) throw new Error(`--worker takes a worker index (0, 1, ...), got ${JSON.stringify(o.worker)}`);
          body.worker = Number(o.worker);
        }
      }
      const r = await client(cmd).call('POST', '/api/v1/ports', JSON.stringify(body)) as Raw;
      print(r, o.output, () => `port/${r.name} added (index ${r.index}, ${r.kind}, mac ${r.mac})\n`);
    });
  port.command('remove').alias('rm').description('detach a port added at runtime').argument('<name>')
    .action(async (name: string, _o, cmd: Command) => {
      await client(cmd).call('DELETE', `/api/v1/ports/${encodeURIComponent(name)}`);
      process.stdout.write(`port/${name} removed\n`);
    });
}
