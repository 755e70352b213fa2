/**
 * The Prometheus text exposition format, version 0.0.4, for the three metric types weft
 * exports: gauge, counter and histogram. Pure: the caller collects the values (at scrape time)
 * and this only writes them down. For weft's families the output is byte for byte what
 * prom-client wrote for the same values (a blank line between families, `le` and values
 * formatted alike), so replacing it changed no series a dashboard or alert reads. A labelled
 * histogram puts `le` after its own labels (client_golang's order; prom-client put it first).
 *
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

export const PROM_TEXT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'gauge' | 'counter' | 'histogram';

/** Label names to values, written in the object's own order. */
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
}

/**
 * One histogram series as kept by its owner: `counts[i]` observations fell in
 * (`bounds[i-1]`, `bounds[i]`] (not cumulative), `count` is all of them (those above the last
 * bound included) and `sum` their total. `bounds` are finite and ascending; `+Inf` is added here.
 */
export interface HistogramSample {
  readonly labels?: Labels;
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export type Family =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'gauge' | 'counter';
      readonly samples: readonly Sample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'histogram';
      readonly samples: readonly HistogramSample[];
    };

/** A sample value as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, integers without a fraction. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** HELP text: backslash and newline escaped. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value: backslash, double quote and newline escaped. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels | undefined, extra?: readonly [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push([extra[0], extra[1]]);
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

function histogramLines(name: string, h: HistogramSample): string[] {
  const lines: string[] = [];
  let cumulative = 0;
  h.bounds.forEach((bound, i) => {
    cumulative += h.counts[i] ?? 0;
    lines.push(`${name}_bucket${labelText(h.labels, ['le', formatValue(bound)])} ${formatValue(cumulative)}`);
  });
  lines.push(`${name}_bucket${labelText(h.labels, ['le', '+Inf'])} ${formatValue(h.count)}`);
  lines.push(`${name}_sum${labelText(h.labels)} ${formatValue(h.sum)}`);
  lines.push(`${name}_count${labelText(h.labels)} ${formatValue(h.count)}`);
  return lines;
}

/** One family: `# HELP`, `# TYPE`, then its samples (none: the two comment lines only). */
export function formatFamily(f: Family): string {
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  if (f.type === 'histogram') for (const h of f.samples) lines.push(...histogramLines(f.name, h));
  else for (const s of f.samples) lines.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
  return lines.join('\n');
}

/** A whole exposition: the families in the order given, a blank line between, a final newline. */
export function formatExposition(families: readonly Family[]): string {
  return `${families.map(formatFamily).join('\n\n')}\n`;
}
