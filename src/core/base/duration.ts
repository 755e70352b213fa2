/** Go-style duration strings (`90s`, `60m`, `24h`, `1h30m`, `500ms`) to milliseconds. */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+)(ms|s|m|h|d)/y;

export function parseDuration(text: string): number | undefined {
  if (text === '') return undefined;
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = PART.exec(text); m; m = PART.exec(text)) {
    const [whole, n, unit] = m;
    total += Number(n) * (UNITS[unit ?? ''] ?? NaN);
    consumed += whole.length;
  }
  return consumed === text.length && Number.isSafeInteger(total) ? total : undefined;
}

/** Milliseconds as the shortest duration text (`86400000` -> `24h`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const out: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out.push(`${n}${unit}`);
    rest -= n * size;
  }
  return out.join('');
}
