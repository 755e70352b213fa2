/**
 * Structured logs: one JSON object per line on stderr (`{"ts","level","msg",...fields}`), so
 * journald and log shippers can parse them. Secrets never reach here: callers log names of
 * files, never their contents.
 *
 * Fields often quote etcd data (keys, reasons that embed lease values). Every string in a line
 * goes through safeText: JSON.stringify escapes C0 controls but writes C1 controls, bidi
 * overrides and U+2028 as they are, and `journalctl` or `jq -r` would print them raw. Strings
 * are capped at LOG_TEXT_CAP characters, so one hostile value cannot flood the journal.
 */
import { safeText } from '../core/base/escape.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

/** A logger; `with` returns one that adds fields to every line. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  with(fields: Record<string, unknown>): Logger;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** The cap of one string in a log line (longer than the display cap: errors quote commands). */
export const LOG_TEXT_CAP = 1024;

/** A field value with every string in it made safe (nested arrays and objects too). */
function safeValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return safeText(v, LOG_TEXT_CAP);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v !== 'object' || v === null) return v;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function')
    return safeValue((v as { toJSON(): unknown }).toJSON(), depth + 1);
  if (depth > 4)
    return safeText(
      JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)),
      LOG_TEXT_CAP,
    );
  if (Array.isArray(v)) return v.map((x) => safeValue(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [safeText(k, 64), safeValue(x, depth + 1)]));
}

export function jsonLogger(
  opts: { level?: Level; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const base = opts.base ?? {};
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < min) return;
    write(`${JSON.stringify(safeValue({ ts: new Date().toISOString(), level, msg, ...base, ...fields }))}\n`);
  };
  return {
    debug: (m, f) => {
      emit('debug', m, f);
    },
    info: (m, f) => {
      emit('info', m, f);
    },
    warn: (m, f) => {
      emit('warn', m, f);
    },
    error: (m, f) => {
      emit('error', m, f);
    },
    with: (fields) => jsonLogger({ ...opts, base: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (tests, one-shot commands). */
export const silentLogger: Logger = jsonLogger({ write: () => undefined });
