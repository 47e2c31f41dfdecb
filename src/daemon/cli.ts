// `wdp start` (the daemon); `wdp demo` is src/demo/cli.ts.
import { Option, type Command } from 'commander';
import pino from 'pino';
import { loadConfigFile, ConfigError } from './config.js';
import { startDaemon } from './daemon.js';
import { existsSync } from 'node:fs';
import { startErrorText } from './start-error.js';

/** Resolves once `file` does not exist, or after `maxMs`. */
async function holdWhileExists(file: string, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  while (existsSync(file) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function registerDaemonCommands(program: Command): void {
  program.command('start')
    .description('run the dataplane daemon: forwarding workers on TAP/AF_PACKET ports plus the control API')
    .requiredOption('-c, --config <file>', 'YAML config (see docs/running.md)')
    .addOption(new Option('--log-level <level>', 'overrides logLevel from the config').choices(LEVELS))
    .addOption(new Option('--ports <backend>', 'port implementation: native (Rust addon), relay (python3 helper), auto = native, else relay').choices(['auto', 'native', 'relay']).default('auto'))
    .option('--kubernetes', 'watch the Kubernetes API (in-cluster credentials) even without a kubernetes: section')
    .option('--kubeconfig <file>', 'watch the Kubernetes API with this kubeconfig (sets kubernetes.kubeconfig)')
    .option('--hostname-override <name>', 'the Node object to watch (sets kubernetes.hostnameOverride; default node.name, else the hostname)')
    .action(async (o: { config: string; logLevel?: string; ports: 'auto' | 'native' | 'relay'; kubernetes?: boolean; kubeconfig?: string; hostnameOverride?: string }) => {
      let cfg;
      try {
        cfg = loadConfigFile(o.config, (raw) => {
          // flags are merged into the file's kubernetes: section before validation
          // (an empty --kubeconfig goes to the check, which refuses it: dropped, the daemon would
          // have started without watching the API it was asked to)
          if (!o.kubernetes && o.kubeconfig === undefined && !o.hostnameOverride) return;
          // a kubernetes: that is no mapping stays as it is: the config check names it
          if (raw.kubernetes !== undefined && raw.kubernetes !== null && (typeof raw.kubernetes !== 'object' || Array.isArray(raw.kubernetes))) return;
          const k = (raw.kubernetes ?? {}) as Record<string, unknown>;
          if (o.kubeconfig !== undefined) k.kubeconfig = o.kubeconfig;
          if (o.hostnameOverride) k.hostnameOverride = o.hostnameOverride;
          raw.kubernetes = k;
        });
      } catch (e) {
        console.error(`wdp start: ${(e as Error).message}`);
        process.exit(2);
      }
      if (o.logLevel) cfg.logLevel = o.logLevel as typeof cfg.logLevel;
      const log = pino({ level: cfg.logLevel, base: { node: cfg.node.name } });
      // Signals are handled from the start: one arriving while ports are still opening stops
      // the daemon as soon as it is up, instead of killing it half-way.
      let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
      let signals = 0;
      let pendingStop = false;
      const stopNow = (d: NonNullable<typeof daemon>) =>
        d.stop().then(() => process.exit(process.exitCode ?? 0), (e) => { log.error({ error: (e as Error).message }, 'stop failed'); process.exit(1); });
      const onSignal = (sig: string) => {
        signals++;
        if (signals > 1) { log.warn({ signal: sig }, 'second signal: exiting without a clean stop'); process.exit(1); }
        log.info({ signal: sig }, 'shutting down');
        if (daemon) void stopNow(daemon); else pendingStop = true;
      };
      process.on('SIGINT', () => onSignal('SIGINT'));
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      try {
        // test hook (test/restart-image-daemon.test.js, restart-image-kube.test.js): the control plane restores only once this
        // file is gone (at most a minute later), however slowly a loaded machine runs the test
        const holdFile = process.env.WDP_TEST_RESTORE_HOLD_FILE;
        const restoreHold = holdFile ? () => holdWhileExists(holdFile, 60_000) : undefined;
        daemon = await startDaemon(cfg, { logger: log, portBackend: o.ports, ...(restoreHold ? { restoreHold } : {}) });
      } catch (e) {
        const err = e as Error;
        log.fatal({ error: err.message }, 'cannot start');
        console.error(`wdp start: ${err instanceof ConfigError ? '' : 'cannot start: '}${startErrorText(err.message)}`);
        process.exit(1);
      }
      if (pendingStop) await stopNow(daemon);
      await daemon.stopped;
    });
}
