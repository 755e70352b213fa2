/** What a unit file's Environment= lines set, read as systemd reads them. */

/** systemd's word splitting of Environment= and Exec lines: words and "quoted words". */
export const systemdWords = (s: string): string[] =>
  [...s.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '');

/**
 * Sets in `env` what one Environment= line's value assigns (`A=1 "B=two words"`: each word
 * NAME=value, a later word winning; a word without `=` sets nothing). Returns `env`.
 */
export function applyEnvironmentLine(env: Record<string, string>, line: string): Record<string, string> {
  for (const w of systemdWords(line)) {
    const i = w.indexOf('=');
    if (i > 0) env[w.slice(0, i)] = w.slice(i + 1);
  }
  return env;
}

/**
 * The variables a unit's `Environment=` lines set (`Environment=A=1 "B=two words"`; a later
 * assignment wins). Comments, `%` specifiers and EnvironmentFile= are not read.
 */
export function unitEnvironment(unit: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(.*)$/gm)) applyEnvironmentLine(env, m[1] ?? '');
  return env;
}
