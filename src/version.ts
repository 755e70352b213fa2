/**
 * weft's version: fixed in by the one-file bundle (scripts/bundle.mjs), else read from
 * package.json (dist/src/version.js -> ../../package.json).
 */
import { readFileSync } from 'node:fs';

declare const __WEFT_VERSION__: string | undefined;
declare const __WEFT_STANDALONE__: boolean | undefined;

let cached: string | undefined;

export function weftVersion(): string {
  if (cached === undefined) {
    if (typeof __WEFT_VERSION__ === 'string') return (cached = __WEFT_VERSION__);
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: string;
      };
      cached = pkg.version ?? 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}

/**
 * What `weft --version` prints: the version, and for the standalone executable (Node.js
 * inside, scripts/build-exe.mjs) also the embedded Node.js version, which security updates
 * follow. The first word is always the bare version.
 */
export function versionText(): string {
  const standalone = typeof __WEFT_STANDALONE__ === 'boolean' && __WEFT_STANDALONE__;
  return standalone ? `${weftVersion()} (standalone executable, embedded Node.js ${process.version})` : weftVersion();
}
