/** Prometheus text checked by an independent parser (python3-prometheus-client). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './cli.js';

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

export function parseMetrics(text: string): Family[] {
  const r = spawnSync('/usr/bin/python3', [join(REPO, 'test/helpers/parse_metrics.py')], {
    input: text,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${r.stderr}\n--- text ---\n${text.slice(0, 2000)}`);
  return JSON.parse(r.stdout) as Family[];
}

/** The value of one sample (name plus exactly these labels), or undefined. */
export function sample(fams: Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of fams) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
