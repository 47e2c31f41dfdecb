// `wdp demo` (what `npm start` runs): its flags, read before anything is built; src/demo/demo.ts runs it.
import { Option, type Command } from 'commander';
import { durationFlagAs } from '../util/duration.js';

/** A usage error of `wdp demo`: one line, exit 2 (as before anything is built). */
function refuse(message: string): never {
  process.stderr.write(`wdp demo: ${message}\n`);
  process.exit(2);
}

export function registerDemoCommand(program: Command): void {
  program.command('demo')
    .description('embedded demo (what `npm start` runs): a Service over three pods in network namespaces, or synthetic traffic when not root')
    .option('--duration <duration>', 'run rounds for this long, from the first: 30s, 1m30s, 500ms, or a bare number of seconds (default: until Ctrl-C when interactive, one short run otherwise)')
    .option('--rounds <n>', 'rounds to run: HTTP request rounds in namespaces (non-interactive default: 3, or as many as --duration allows); one-second measuring rounds on synthetic traffic')
    .addOption(new Option('--mode <mode>', 'netns (needs root), synthetic, or auto: netns where it can run, else synthetic (saying why)').choices(['auto', 'netns', 'synthetic']).default('auto'))
    .addHelpText('after', '\nWith --duration and --rounds, whichever ends first.')
    .action(async (o: { duration?: string; rounds?: string; mode: 'auto' | 'netns' | 'synthetic' }) => {
      const durationS = o.duration === undefined ? undefined : durationFlagAs(o.duration, { flag: '--duration', unit: 's', min: 0, above: true }, refuse);
      let rounds: number | undefined;
      if (o.rounds !== undefined) {
        rounds = /^\s*\d+\s*$/.test(o.rounds) ? Number(o.rounds) : NaN;
        if (!(rounds > 0)) refuse(`--rounds must be a positive integer, got ${JSON.stringify(o.rounds)}`);
      }
      const { runDemo } = await import('./demo.js');
      process.exit(await runDemo({ ...(durationS !== undefined ? { durationS } : {}), ...(rounds !== undefined ? { rounds } : {}), mode: o.mode }));
    });
}
