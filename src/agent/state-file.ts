/**
 * The last known good state on disk (`<host.stateDir>/state.json`, mode 0600, written
 * atomically): what lets a host come up after a reboot while etcd is out of reach
 * (core/fleet/cached-state.ts decides whether it may). Written when something in it changed (a lease
 * acquired or renewed, the peer set the reconciler converged on), at most once per `minGapMs`;
 * never while the agent runs from the cache itself (it would only copy it).
 */
import { join } from 'node:path';
import { type CachedState, encodeCachedState } from '../core/fleet/cached-state.js';
import { formatPrefix } from '../core/net/cidr.js';
import type { KeyValue } from '../core/fleet/store.js';
import { readTextIfExists, writeFileAtomic } from '../adapters/files.js';
import type { Logger } from '../adapters/log.js';
import type { HeldLease } from './lease-keeper.js';
import { message } from './retry.js';

export const stateFilePath = (stateDir: string): string => join(stateDir, 'state.json');

/** The file's text, or undefined when absent or unreadable (logged: starting from it is then impossible). */
export async function readStateFile(stateDir: string, log: Logger): Promise<string | undefined> {
  try {
    return await readTextIfExists(stateFilePath(stateDir));
  } catch (e) {
    log.warn('cannot read the cached state; it will not be used', { file: stateFilePath(stateDir), error: message(e) });
    return undefined;
  }
}

/** The state to keep on disk, from the lease held and the peers the fleet view holds. */
export function cachedStateOf(
  config: string,
  held: HeldLease | undefined,
  hostID: string,
  fleet: { entries: KeyValue[]; revision: string },
): CachedState | undefined {
  if (!held) return undefined;
  return {
    version: 1,
    savedAtMs: Date.now(),
    config,
    revision: fleet.revision,
    lease: {
      subnet: formatPrefix(held.subnet),
      subnetKey: held.subnetKey,
      value: held.value,
      expiresAtMs: held.expiresAtMs,
      hostID,
    },
    peers: fleet.entries.map((kv) => ({
      key: kv.key,
      value: kv.value,
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
    })),
  };
}

export class StateSaver {
  private timer: NodeJS.Timeout | undefined;
  /** The last content written, without its time stamp (what "changed" is judged on). */
  private lastWritten = '';
  private writing: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly d: { stateDir: string; minGapMs: number; build: () => CachedState | undefined; log: Logger },
  ) {}

  /** Something may have changed: write within minGapMs if it did. */
  poke(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.d.minGapMs);
  }

  /** Write now if the content changed (one write at a time). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    const s = this.d.build();
    if (!s) return;
    const content = encodeCachedState({ ...s, savedAtMs: 0 });
    if (content === this.lastWritten) return;
    this.writing = writeFileAtomic(stateFilePath(this.d.stateDir), encodeCachedState(s), 0o600)
      .then(() => {
        this.lastWritten = content;
        this.d.log.debug('cached state written', { file: stateFilePath(this.d.stateDir), peers: s.peers.length });
      })
      .catch((e: unknown) => {
        this.d.log.warn('cannot write the cached state; a start while etcd is down will wait for etcd', {
          error: message(e),
        });
      })
      .finally(() => {
        this.writing = undefined;
      });
    await this.writing;
  }

  /** Write what is pending, then no more. */
  async stop(): Promise<void> {
    const pending = this.timer !== undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopped = true;
    if (pending) await this.flush();
    else await this.writing;
  }
}
