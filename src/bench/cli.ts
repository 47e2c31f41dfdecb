// Placeholder owned by the benchmark work: registers `wdp bench ...`.
import type { Command } from 'commander';
export function registerBenchCommands(program: Command): void {
  program.command('bench').description('benchmarks').action(() => { console.error('wdp bench: not built yet'); process.exit(1); });
}
