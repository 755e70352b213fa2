/** This process's figures from /proc/self (parsed by core/health/proc-status.ts), for /metrics. */
import { readFileSync, readdirSync } from 'node:fs';
import { type ProcFacts, parseMaxOpenFiles, parseProcStatus } from '../core/health/proc-status.js';

/**
 * Reads /proc/self at scrape time. /proc is not disk I/O: the kernel answers from its own
 * structures and never blocks (libuv reads the same files for process.memoryUsage()).
 * Without /proc, the resident size comes from Node and the rest is left out.
 */
export function readProcSelf(): ProcFacts {
  const tryRead = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch {
      return undefined;
    }
  };
  const status = tryRead(() => parseProcStatus(readFileSync('/proc/self/status', 'utf8'))) ?? {};
  const residentBytes = status.residentBytes ?? tryRead(() => process.memoryUsage.rss());
  // Less one: the descriptor readdir itself had open while listing.
  const openFds = tryRead(() => readdirSync('/proc/self/fd').length - 1);
  const maxFds = tryRead(() => parseMaxOpenFiles(readFileSync('/proc/self/limits', 'utf8')));
  return {
    ...(residentBytes !== undefined ? { residentBytes } : {}),
    ...(status.virtualBytes !== undefined ? { virtualBytes: status.virtualBytes } : {}),
    ...(openFds !== undefined ? { openFds } : {}),
    ...(maxFds !== undefined ? { maxFds } : {}),
  };
}
