/**
 * iptables, thinly: observe with `iptables-save -t TABLE`, change weft's chains atomically with
 * `iptables-restore --noflush -w` (nothing else in the table is touched).
 */
import { type SavedTable, parseIptablesSave } from '../core/masq.js';
import { exec, execOk } from './exec.js';

export async function saveTables(tables: readonly string[]): Promise<Map<string, SavedTable>> {
  const out = new Map<string, SavedTable>();
  for (const t of tables) out.set(t, parseIptablesSave(await execOk('iptables-save', ['-t', t])));
  return out;
}

export async function restoreNoflush(payload: string): Promise<void> {
  if (payload === '') return;
  await execOk('iptables-restore', ['--noflush', '-w', '5'], { input: payload });
}

/** `--random-fully` needs iptables >= 1.6.2 (as flanneld checks). */
export async function supportsRandomFully(): Promise<boolean> {
  const r = await exec('iptables', ['--version']);
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  if (!m) return false;
  const [maj, min, pat] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 1 || (maj === 1 && (min > 6 || (min === 6 && pat >= 2)));
}
