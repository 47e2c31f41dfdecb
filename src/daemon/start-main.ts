// `wdp start` alone: the daemon's command without the rest of the CLI's modules (the API client,
// the bench, observe, YAML output), so the forwarding workers are spawned ~0.1 s of CPU earlier —
// with a table image they forward from then on (docs/running.md, restarts). bin/wdp.js runs this
// for `wdp start`; the full CLI (src/wdp.ts) registers the same command.
//
// An exception nothing else handles — a bug, or a failure in a callback that no caller awaits —
// ends the process as Node would (no clean stop: the state is unknown; every acknowledged apply is
// on disk already, and a stop's table images are not written, so the next start restores from the
// store), but says so in one line on stderr instead of a raw stack; WDP_DEBUG=1 adds the stack.
// Exit code 1, like any other failed start (systemd's Restart=on-failure restarts it).
import { Command } from 'commander';
import { registerDaemonCommands } from './cli.js';
import { usageErrorsInOrder } from '../util/cli-usage.js';

const DEBUG = /^(1|true|yes)$/i.test(process.env.WDP_DEBUG ?? '');

function unexpected(e: unknown): never {
  const err = e instanceof Error ? e : new Error(String(e));
  const line = (err.message || err.name).trim().replace(/\s*\n\s*/g, '; ');
  process.stderr.write(`wdp start: unexpected error, exiting: ${line}${DEBUG ? `\n${err.stack ?? ''}` : ' (WDP_DEBUG=1 prints its stack)'}\n`);
  process.exit(1);
}
process.on('uncaughtException', unexpected);
process.on('unhandledRejection', unexpected);

const program = new Command('wdp');
registerDaemonCommands(program);
// as the full CLI: `wdp start --bogus` names --bogus, not the missing --config (src/util/cli-usage.ts)
usageErrorsInOrder(program);
try { await program.parseAsync(process.argv); } catch (e) { unexpected(e); }
