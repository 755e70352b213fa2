/**
 * The monitoring that ships (examples/monitoring): the alert rules pass `promtool check rules`
 * and their unit tests (`promtool test rules`), every alert has a firing and a not-firing case,
 * the scrape example passes `promtool check config`, and every metric named by a rule or by a
 * Grafana dashboard query is one weft really exports (read from weft's own metrics registry).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Metrics } from '../../src/agent/metrics.js';
import { REPO } from '../helpers/cli.js';

const DIR = join(REPO, 'examples/monitoring');
const promtool = (args: string[]) => spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });

interface Rule { alert: string; expr: string }
interface RuleTest { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }
const rules = (parse(readFileSync(join(DIR, 'weft-alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const ruleTests = (parse(readFileSync(join(DIR, 'weft-alerts.test.yml'), 'utf8')) as { tests: RuleTest[] }).tests.flatMap((x) => x.alert_rule_test ?? []);

/** Every series name weft's registry exports (histograms as their _bucket/_sum/_count series). */
function exported(): Set<string> {
  const unused = (): never => { throw new Error('not scraped'); };
  const m = new Metrics({ snapshot: unused, counters: unused });
  const names = new Set<string>();
  for (const metric of m.registry.getMetricsAsArray()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    names.add(name);
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads (strings, label matchers, ranges and functions removed). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  return [...bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)]
    .filter((m) => m[2] === undefined && !KEYWORDS.has((m[1] ?? '').toLowerCase()) && !/^\d/.test(m[1] ?? ''))
    .map((m) => m[1] ?? '');
}

test('promtool check rules: the alert rules are valid', (t) => {
  const r = promtool(['check', 'rules', 'weft-alerts.yml']);
  t.log(`${r.stdout}${r.stderr}`.trim());
  t.is(r.status, 0);
  t.regex(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('promtool check config: the scrape example, with the rules it loads, is valid', (t) => {
  const r = promtool(['check', 'config', 'prometheus-scrape.yml']);
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('promtool test rules: every alert has a firing and a not-firing case, and all pass', (t) => {
  const required = ['WeftDown', 'WeftNotReady', 'WeftLeaseExpiringSoon', 'WeftPeersNotProgrammed', 'WeftDriftRepairsClimbing', 'WeftEtcdUnreachable', 'WeftEtcdErrors', 'WeftQuarantinedLeases', 'WeftDegraded'];
  t.deepEqual(rules.map((r) => r.alert).sort(), [...required].sort());
  for (const { alert } of rules) {
    const cases = ruleTests.filter((c) => c.alertname === alert);
    t.true(cases.some((c) => (c.exp_alerts ?? []).length > 0), `${alert}: a case where it fires`);
    t.true(cases.some((c) => (c.exp_alerts ?? []).length === 0), `${alert}: a case where it does not`);
  }
  const r = promtool(['test', 'rules', 'weft-alerts.test.yml']);
  t.log(`${r.stdout}${r.stderr}`.replace(/\n{2,}/g, '\n').trim());
  t.is(r.status, 0);
  t.regex(r.stdout, /SUCCESS/);
});

test('the dashboard and the rules name only metrics weft exports', (t) => {
  const known = new Set([...exported(), 'up']);
  t.true(known.has('weft_peers') && known.has('weft_reconcile_duration_seconds_bucket') && known.has('process_resident_memory_bytes'), 'the registry was read');
  // The extractor really finds names (so this test can fail).
  t.deepEqual(metricNames('sum by (instance) (rate(weft_nope_total{job="weft", a=~"x(y)"}[5m])) / ignoring(state) up > 0'), ['weft_nope_total', 'up']);
  const dash = JSON.parse(readFileSync(join(DIR, 'weft-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } };
  const queries: [string, string][] = [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((q): [string, string] => [`panel "${p.title}"`, q.expr])),
    ...dash.templating.list.flatMap((v): [string, string][] => (typeof v.query === 'object' && v.query !== null ? [['variable', (v.query as { query: string }).query.replace(/^label_values\((.*),\s*\w+\)$/, '$1')]] : [])),
    ...rules.map((r): [string, string] => [`alert ${r.alert}`, r.expr]),
  ];
  t.true(queries.length > 20);
  const used = new Set<string>();
  for (const [where, expr] of queries) {
    const names = metricNames(expr);
    t.true(names.length > 0, `${where}: ${expr} reads some metric`);
    for (const n of names) { used.add(n); t.true(known.has(n), `${where}: ${n} is not a metric weft exports`); }
  }
  t.log(`${queries.length} queries read ${used.size} metrics: ${[...used].sort().join(', ')}`);
});
