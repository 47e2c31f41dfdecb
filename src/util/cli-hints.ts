// The command line's "did you mean ...?" for a misspelt flag or command, from src/util/suggest.ts —
// the same hint, in the same words, as a config file's misspelt key gets — instead of commander's
// own (another distance rule, another wording: "(Did you mean --config?)" on a line of its own).
// commander still finds the unknown name and fails as before (same message, code, exit code);
// this only adds the hint to its error line, so nothing else of its parsing changes.
import type { Command } from 'commander';
import { didYouMean } from './suggest.js';

/** The long flags `c` takes: its own and those of the commands above it (--server, --token). */
function longFlags(c: Command): string[] {
  const out: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) {
    for (const o of x.createHelp().visibleOptions(x)) if (o.long) out.push(o.long);
  }
  return out;
}

/** The names (and aliases) of the commands under `c`. */
function commandNames(c: Command): string[] {
  return c.createHelp().visibleCommands(c).flatMap((s) => [s.name(), ...s.aliases()]);
}

/** `c`'s hint for its error line `line` ('' when the error is not an unknown flag or command, or
 * nothing is close). */
export function unknownNameHint(c: Command, line: string): string {
  const flag = /^error: unknown option '(--[^'=]+)(=[^']*)?'/.exec(line);
  if (flag) {
    // compared without the dashes: "--s" is no prefix of every long flag
    const hint = didYouMean(flag[1].slice(2), longFlags(c).map((f) => f.slice(2)));
    return hint.replace(/"([^"]*)"/g, '"--$1"');
  }
  const command = /^error: unknown command '([^']+)'/.exec(line);
  return command ? didYouMean(command[1], commandNames(c)) : '';
}

/** Applies to `program` and every command registered on it (call it once they all are). */
export function suggestUnknownNames(program: Command): void {
  const walk = (c: Command): void => {
    c.showSuggestionAfterError(false);
    const out = c.configureOutput();
    const write = out.outputError ?? ((str: string, w: (s: string) => void) => w(str));
    c.configureOutput({
      outputError: (str, w) => {
        const hint = unknownNameHint(c, str);
        write(hint ? str.replace(/\n$/, '') + ` (${hint})\n` : str, w);
      },
    });
    c.commands.forEach(walk);
  };
  walk(program);
}
