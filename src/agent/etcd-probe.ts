/**
 * Readiness needs to know etcd answers: when nothing else talked to it lately, ask it
 * something cheap. A failed probe is counted and remembered by the store (stats.lastError),
 * which is what readiness reports.
 */
import type { Logger } from '../adapters/log.js';
import type { EtcdStore } from '../adapters/etcd.js';
import { message } from './retry.js';

export class EtcdProbe {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(private readonly d: { store: EtcdStore; key: string; everyMs: number; log: Logger }) {}

  start(): void {
    this.timer = setInterval(() => {
      void this.probe();
    }, this.d.everyMs);
  }
  stop(): void {
    clearInterval(this.timer);
  }

  private async probe(): Promise<void> {
    const { store } = this.d;
    if (this.probing || Date.now() - store.stats.lastOkAtMs < this.d.everyMs) return;
    this.probing = true;
    try {
      await store.get(this.d.key);
    } catch (e) {
      // Counted by the store and shown by readiness; a debug line keeps it traceable.
      this.d.log.debug('etcd probe failed', { error: message(e) });
    } finally {
      this.probing = false;
    }
  }
}
