// `wdp start` alone: the daemon's command without the rest of the CLI's modules (the API client,
// the bench, observe, YAML output), so the forwarding workers are spawned ~0.1 s of CPU earlier —
// with a table image they forward from then on (docs/running.md, restarts). bin/wdp.js runs this
// for `wdp start`; the full CLI (src/cli/main.ts) registers the same command.
import { Command } from 'commander';
import { registerDaemonCommands } from './cli.js';

const program = new Command('wdp');
registerDaemonCommands(program);
await program.parseAsync(process.argv);
