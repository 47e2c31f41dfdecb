// Placeholder owned by the daemon work: registers `wdp start` and `wdp demo`.
import type { Command } from 'commander';
export function registerDaemonCommands(program: Command): void {
  program.command('start').description('run the dataplane daemon').option('--config <file>', 'YAML config')
    .action(() => { console.error('wdp start: not built yet'); process.exit(1); });
  program.command('demo').description('embedded demo (what `npm start` runs)')
    .action(() => { console.error('wdp demo: not built yet'); process.exit(1); });
}
