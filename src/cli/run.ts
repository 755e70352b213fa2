/**
 * `weft run [--spec F]`: the daemon. JSON log lines on stderr. SIGTERM or SIGINT stops it
 * cleanly with exit 0 and leaves the datapath and lease in place (a restart is hitless).
 */
import type { CommandModule } from 'yargs';
import type { HealthSnapshot } from '../core/health/health.js';
import { WeftError } from '../core/base/errors.js';
import { credentialWarnings, privilegedFileProblems } from '../adapters/credentials.js';
import { jsonLogger } from '../adapters/log.js';
import { Notifier, takeNotifyEnvironment } from '../adapters/systemd.js';
import { Metrics } from '../agent/metrics.js';
import { Agent } from '../agent/run.js';
import { Surface } from '../agent/surface.js';
import { handle, loadSpec, withSpec } from './common.js';

interface Args {
  spec: string;
}

export const runCommand: CommandModule<object, Args> = {
  command: 'run',
  describe: 'Run the agent: lease a subnet, program the datapath, keep it converged',
  builder: (y) => withSpec(y),
  handler: handle<Args>(async (args) => {
    // First, before any child process exists: only systemd-notify is to see NOTIFY_SOCKET.
    const notifyEnv = takeNotifyEnvironment(process.env);
    const spec = await loadSpec(args.spec);
    const level = process.env.WEFT_LOG_LEVEL === 'debug' ? 'debug' : 'info';
    const log = jsonLogger({ level });
    for (const w of await credentialWarnings(spec.etcd))
      log.warn(w.message, { file: w.file, mode: `0${w.mode.toString(8)}` });
    // A program weft runs as root, or the fabric's preshared key, that others could change (or read): refuse to start.
    const unsafe = await privilegedFileProblems(spec.host);
    if (unsafe.length > 0) throw new WeftError('E_HOST', `${spec.file}: ${unsafe.join('; ')}`);
    // The last resort. Data from etcd is judged entry by entry and never reaches this point; a
    // throw that does is a bug in weft: say so in the log and exit 70 (EX_SOFTWARE) for systemd.
    const bug =
      (kind: string) =>
      (e: unknown): void => {
        log.error(`internal error (${kind}): a bug in weft, not bad data; exiting for systemd to restart`, {
          error: e instanceof Error ? e.message : String(e),
          stack: e instanceof Error ? (e.stack ?? '') : '',
        });
        process.exit(70);
      };
    process.on('uncaughtException', bug('uncaught exception'));
    process.on('unhandledRejection', bug('unhandled rejection'));
    // The surface's snapshot: the agent's, with the health listener's state (a failed bind counts).
    const metrics = new Metrics({
      snapshot: (): HealthSnapshot => surface.snapshot(),
      counters: () => agent.counters(),
    });
    const agent = new Agent(spec, log, {
      onPass: (ms) => {
        metrics.observePass(ms);
      },
      onStep: () => {
        surface.tick();
      },
      onFatal: () => {
        if (!stopping)
          stopping = surface
            .stopping()
            .then(() => agent.stop())
            .then(() => surface.stop())
            .then(() => {
              process.exit(1);
            });
      },
    });
    const notifier = new Notifier(notifyEnv, log);
    const surface = new Surface({ spec, log, notifier, metrics, snapshot: () => agent.snapshot() });
    let stopping: Promise<void> | undefined;
    const stop = (sig: string): void => {
      if (stopping) {
        log.warn('second signal; exiting now', { signal: sig });
        process.exit(1);
      }
      log.info('stopping; the datapath and the lease stay in place', { signal: sig });
      stopping = surface
        .stopping()
        .then(() => agent.stop())
        .then(() => surface.stop())
        .then(() => {
          log.info('exited cleanly');
          process.exit(0);
        });
    };
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.on('SIGINT', () => {
      stop('SIGINT');
    });
    try {
      await surface.start();
      await agent.start();
    } catch (e) {
      if (stopping) {
        await stopping;
        return;
      }
      await agent.stop();
      await surface.stop();
      throw e;
    }
    await surface.markReady();
    await new Promise(() => undefined); // runs until a signal
  }),
};
