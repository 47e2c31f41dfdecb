// Usage errors of the `wdp` command line in the order an operator fixes them. commander checks a
// command's required options before its unknown ones, so `wdp start --bogus` (a misspelt
// `--conifg`, an option of another command) said "required option '-c, --config <file>' not
// specified" and only once that was given named the option it did not know. Here required options
// are checked in a preAction hook instead, which commander runs after it has refused unknown
// options, missing arguments and bad choices: the first error named is the one on the command line.
// Each command's usage error ends with where its usage is (`wdp help start`).
import type { Command } from 'commander';
import { suggestUnknownNames } from './cli-hints.js';

/** The command and every command below it. */
function commandsOf(root: Command): Command[] {
  const out: Command[] = [];
  const walk = (c: Command) => { out.push(c); c.commands.forEach(walk); };
  walk(root);
  return out;
}

/** The words after the program's name that run `c` ("start", "port add"). */
function commandPath(c: Command): string {
  const words: string[] = [];
  for (let x: Command | null = c; x?.parent; x = x.parent) words.unshift(x.name());
  return words.join(' ');
}

/** Applies both to `program` and every command registered on it (call it once they all are):
 * required options are checked after unknown ones (with commander's own message and code, so a
 * caller's exit code for usage errors is unchanged), and a usage error ends with
 * "(run 'wdp help CMD' for usage)"; an unknown flag or command gets src/util/cli-hints.ts's hint. */
export function usageErrorsInOrder(program: Command): void {
  // a misspelt flag or command: suggest.ts's "did you mean ...?", as a config file's key gets
  suggestUnknownNames(program);
  for (const c of commandsOf(program)) {
    const path = commandPath(c);
    c.showHelpAfterError(path ? `(run '${program.name()} help ${path}' for usage)` : `(run '${program.name()} --help' for usage)`);
    const required = c.options.filter((o) => o.mandatory);
    if (!required.length) continue;
    for (const o of required) o.mandatory = false;
    c.hook('preAction', (_self, action) => {
      // (a hook of an ancestor runs for its subcommands' actions too: only this command's)
      if (action !== c) return;
      for (const o of required) {
        if (c.getOptionValue(o.attributeName()) === undefined) {
          c.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: 1 });
        }
      }
    });
  }
}
