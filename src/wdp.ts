// `wdp`, the command line as installed (bin/wdp.js runs it for every command but `start`): the
// client's commands (src/cli/main.ts) with those that run things on this node — the daemon
// (`start`, src/daemon/cli.ts), the demo and the benchmarks. Composed here, above all of them, so
// that the client layer imports nothing of what it starts.
import { main } from './cli/main.js';
import { registerDaemonCommands } from './daemon/cli.js';
import { registerDemoCommand } from './demo/cli.js';
import { registerBenchCommands } from './bench/cli.js';

process.exitCode = await main(process.argv, [registerDaemonCommands, registerDemoCommand, registerBenchCommands]);
