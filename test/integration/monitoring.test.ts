/**
 * The monitoring that ships (examples/monitoring): the alert rules pass `promtool check rules`
 * and their unit tests (`promtool test rules`), every alert has a firing and a not-firing case,
 * the scrape example passes `promtool check config`, and every metric named by a rule or by a
 * Grafana dashboard query is one weft really exports (read from weft's own list of families),
 * and what /metrics writes passes `promtool check metrics` (Prometheus' own parser and linter).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Metrics } from '../../src/agent/metrics.js';
import type { HealthSnapshot } from '../../src/core/health/health.js';
import { REPO } from '../helpers/cli.js';
import { COUNTERS, healthSnapshot } from '../helpers/health-snapshot.js';

const DIR = join(REPO, 'examples/monitoring');
const promtool = (args: string[]) => spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });

interface Rule {
  alert: string;
  expr: string;
}
interface RuleTest {
  alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
}
const rules = (
  parse(readFileSync(join(DIR, 'weft-alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);
const ruleTests = (
  parse(readFileSync(join(DIR, 'weft-alerts.test.yml'), 'utf8')) as { tests: RuleTest[] }
).tests.flatMap((x) => x.alert_rule_test ?? []);

/** Every series name weft exports (histograms as their _bucket/_sum/_count series). */
function exported(): Set<string> {
  const unused = (): never => {
    throw new Error('not scraped');
  };
  const m = new Metrics({ snapshot: unused, counters: unused });
  const names = new Set<string>();
  for (const { name, type } of m.families()) {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

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
  const required = [
    'WeftDown',
    'WeftNotReady',
    'WeftLeaseExpiringSoon',
    'WeftPeersNotProgrammed',
    'WeftDriftRepairsClimbing',
    'WeftEtcdUnreachable',
    'WeftEtcdErrors',
    'WeftQuarantinedLeases',
    'WeftDegraded',
  ];
  t.deepEqual(rules.map((r) => r.alert).sort(), [...required].sort());
  for (const { alert } of rules) {
    const cases = ruleTests.filter((c) => c.alertname === alert);
    t.true(
      cases.some((c) => (c.exp_alerts ?? []).length > 0),
      `${alert}: a case where it fires`,
    );
    t.true(
      cases.some((c) => (c.exp_alerts ?? []).length === 0),
      `${alert}: a case where it does not`,
    );
  }
  const r = promtool(['test', 'rules', 'weft-alerts.test.yml']);
  t.log(`${r.stdout}${r.stderr}`.replace(/\n{2,}/g, '\n').trim());
  t.is(r.status, 0);
  t.regex(r.stdout, /SUCCESS/);
});

test('the dashboard and the rules name only metrics weft exports', (t) => {
  const known = new Set([...exported(), 'up']);
  t.true(
    known.has('weft_peers') &&
      known.has('weft_reconcile_duration_seconds_bucket') &&
      known.has('process_resident_memory_bytes'),
    'the registry was read',
  );
  // The extractor really finds names (so this test can fail).
  t.deepEqual(
    metricNames('sum by (instance) (rate(weft_nope_total{job="weft", a=~"x(y)"}[5m])) / ignoring(state) up > 0'),
    ['weft_nope_total', 'up'],
  );
  const dash = JSON.parse(readFileSync(join(DIR, 'weft-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
    templating: { list: { query?: unknown }[] };
  };
  const queries: [string, string][] = [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((q): [string, string] => [`panel "${p.title}"`, q.expr])),
    ...dash.templating.list.flatMap((v): [string, string][] =>
      typeof v.query === 'object' && v.query !== null
        ? [['variable', (v.query as { query: string }).query.replace(/^label_values\((.*),\s*\w+\)$/, '$1')]]
        : [],
    ),
    ...rules.map((r): [string, string] => [`alert ${r.alert}`, r.expr]),
  ];
  t.true(queries.length > 20);
  const used = new Set<string>();
  for (const [where, expr] of queries) {
    const names = metricNames(expr);
    t.true(names.length > 0, `${where}: ${expr} reads some metric`);
    for (const n of names) {
      used.add(n);
      t.true(known.has(n), `${where}: ${n} is not a metric weft exports`);
    }
  }
  t.log(`${queries.length} queries read ${used.size} metrics: ${[...used].sort().join(', ')}`);
});

const base = healthSnapshot();
/** Leased dual-stack, with text that /metrics must escape (a version and a drift kind with `"`, `\\` and a newline). */
const SNAPSHOT: HealthSnapshot = healthSnapshot({
  version: '9.9.9-"odd\\version\nx',
  lease: { ...base.lease!, ipv6Subnet: 'fd00:10:244:5::/64' },
  peers: { known: 12, programmed: 11, rejected: 1, malformed: 2 },
  reconcile: { ...base.reconcile, driftRepairs: { route: 2, 'we"ird\\kind\n': 1 } },
  etcd: { ...base.etcd, requestErrors: 3 },
});

const checkMetrics = (text: string) =>
  spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });

test('promtool check metrics: what /metrics writes parses and lints clean, with and without a lease', async (t) => {
  // The check bites: a bad label value and a gauge named like a counter are caught.
  t.not(checkMetrics('# HELP x h\n# TYPE x gauge\nx{a="b"c"} 1\n').status, 0);
  t.not(checkMetrics('# HELP x_total h\n# TYPE x_total gauge\nx_total 1\n').status, 0);
  const unleased: HealthSnapshot = { ...SNAPSHOT, reconcile: { ...SNAPSHOT.reconcile, driftRepairs: {} } };
  delete (unleased as { lease?: unknown }).lease;
  delete (unleased as { backend?: unknown }).backend;
  const cases: [string, HealthSnapshot][] = [
    ['leased', SNAPSHOT],
    ['no lease yet', unleased],
  ];
  for (const [what, snapshot] of cases) {
    const m = new Metrics({ snapshot: () => snapshot, counters: () => COUNTERS });
    for (const ms of [0.4, 1, 3, 70, 2600, 20_000]) m.observePass(ms);
    const { type, body } = await m.text();
    t.is(type, 'text/plain; version=0.0.4; charset=utf-8');
    const r = checkMetrics(body);
    t.is(r.status, 0, `${what}: ${r.stdout}${r.stderr}\n--- text ---\n${body}`);
    t.is(`${r.stdout}${r.stderr}`.trim(), '', what);
    // Every family exported is written, in order, and nothing else.
    t.deepEqual(
      [...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => `${x[1] ?? ''} ${x[2] ?? ''}`),
      m.families().map((f) => `${f.name} ${f.type}`),
      what,
    );
  }
});
