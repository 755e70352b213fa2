/**
 * iptables and ip6tables, thinly: observe with `iptables-save -t TABLE` (`ip6tables-save` for
 * IPv6), change weft's chains atomically with `iptables-restore --noflush -w`
 * (`ip6tables-restore`): nothing else in the table is touched.
 */
import type { Family } from '../core/net/cidr.js';
import { type SavedTable, parseIptablesSave, versionSupportsRandomFully } from '../core/datapath/masq.js';
import { exec, execOk, streamLines } from './exec.js';

/** The iptables program for a family. */
const iptablesTool = (family: Family): 'iptables' | 'ip6tables' => (family === 4 ? 'iptables' : 'ip6tables');

export async function saveTables(family: Family, tables: readonly string[]): Promise<Map<string, SavedTable>> {
  const out = new Map<string, SavedTable>();
  for (const t of tables) out.set(t, parseIptablesSave(await execOk(`${iptablesTool(family)}-save`, ['-t', t])));
  return out;
}

export async function restoreNoflush(family: Family, payload: string): Promise<void> {
  if (payload === '') return;
  await execOk(`${iptablesTool(family)}-restore`, ['--noflush', '-w', '5'], { input: payload });
}

/**
 * `--random-fully` needs iptables (or ip6tables) >= 1.6.2. A missing iptables is an error (weft
 * needs it); a missing ip6tables answers false, so that IPv4 still starts and the IPv6 rules
 * report the missing program on their own.
 */
export async function supportsRandomFully(family: Family = 4): Promise<boolean> {
  const r =
    family === 4
      ? await exec('iptables', ['--version'])
      : await exec('ip6tables', ['--version']).catch(() => undefined);
  return r !== undefined && versionSupportsRandomFully(r.stdout);
}

/** Does `iptables` (and so ip6tables) program nf_tables (iptables-nft), whose changes xtables-monitor sees? */
async function usesNfTables(): Promise<boolean> {
  const r = await exec('iptables', ['--version']).catch(() => undefined);
  return r !== undefined && r.stdout.includes('(nf_tables)');
}

/**
 * Follow ruleset changes instead of polling: `xtables-monitor -e` (iptables-nft) prints a
 * `NEWGEN:` line for every committed change of either family, made by anyone. Its stdout is a
 * pipe, so `stdbuf -oL` keeps it line-buffered. `onChange` on each generation; `onDown` when the
 * monitor is not running (it exited): the caller then polls, and `onUp` once it runs again
 * (restarted after 5 s). Not started at all where iptables is the legacy one (xtables-monitor,
 * shipped anyway, would see nothing of it) or xtables-monitor is missing: the caller polls.
 */
export function monitorRules(h: { onChange: () => void; onUp: () => void; onDown: () => void }): { stop(): void } {
  let stopped = false;
  let current: { stop(): void } | undefined;
  const startOnce = (): void => {
    if (stopped) return;
    let up = false;
    const s = streamLines('stdbuf', ['-oL', 'xtables-monitor', '-e'], (line) => {
      if (!up) {
        up = true;
        h.onUp();
      }
      if (line.startsWith('NEWGEN:')) h.onChange();
    });
    current = s;
    // xtables-monitor prints nothing until a change: it is up once it has run a moment.
    const t = setTimeout(() => {
      if (!up && !stopped) {
        up = true;
        h.onUp();
      }
    }, 500);
    t.unref();
    void s.exited.then((code) => {
      clearTimeout(t);
      if (stopped) return;
      h.onDown();
      // stdbuf exits 126/127 when it cannot run xtables-monitor: polling it is, for good.
      if (code !== 126 && code !== 127) setTimeout(startOnce, 5000).unref();
    });
  };
  void usesNfTables().then((nft) => {
    if (nft) startOnce();
  });
  return {
    stop: () => {
      stopped = true;
      current?.stop();
    },
  };
}
