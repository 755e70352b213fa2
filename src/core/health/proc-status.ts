/**
 * The process's own figures as /proc/self gives them (adapters/proc-self.ts reads the files),
 * parsed here. Pure.
 */

/** The process's own figures from /proc/self, each absent when it cannot be read. */
export interface ProcFacts {
  readonly residentBytes?: number;
  readonly virtualBytes?: number;
  readonly openFds?: number;
  readonly maxFds?: number;
}

/** VmRSS and VmSize from /proc/self/status (given in kB) in bytes. */
export function parseProcStatus(text: string): { residentBytes?: number; virtualBytes?: number } {
  const kB = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const out: { residentBytes?: number; virtualBytes?: number } = {};
  const rss = kB('VmRSS');
  const vsize = kB('VmSize');
  if (rss !== undefined) out.residentBytes = rss;
  if (vsize !== undefined) out.virtualBytes = vsize;
  return out;
}

/** The soft limit of "Max open files" in /proc/self/limits (absent when unlimited or unreadable). */
export function parseMaxOpenFiles(text: string): number | undefined {
  const m = /^Max open files\s+(\d+)\s/m.exec(text);
  return m ? Number(m[1]) : undefined;
}
