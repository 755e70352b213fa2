/**
 * weft's version: fixed in by the one-file bundle (scripts/bundle.mjs), else read from
 * package.json (dist/src/version.js -> ../../package.json).
 */
import { readFileSync } from 'node:fs';

declare const __WEFT_VERSION__: string | undefined;

let cached: string | undefined;

export function weftVersion(): string {
  if (cached === undefined) {
    if (typeof __WEFT_VERSION__ === 'string') return (cached = __WEFT_VERSION__);
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
      cached = pkg.version ?? 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
