// The PrometheusRule's alerts name only metrics the code really exports: every metric name in
// each expression (PromQL identifiers that are not functions, keywords or label names) must be
// registered by the operator's runtime metrics, its own (store ghosts, target syncs), the
// webhook's or the decision API's.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { Histogram, type Registry } from 'prom-client';
import { createRuntimeMetrics } from '../../src/k8s/metrics.js';
import { accessMetrics, targetSyncMetrics } from '../../src/operator/metrics.js';
import type { DecisionIndex } from '../../src/server/decision-index.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { createWebhookMetrics } from '../../src/webhook/metrics.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Rule { alert: string; expr: string; annotations: { summary: string; description: string } }
const rulesOf = (spec: { groups: { rules: Rule[] }[] }) => spec.groups.flatMap((g) => g.rules);

/** Every series name the registries export (histograms as _bucket, _sum and _count too). */
function exportedNames(): Set<string> {
  const runtime = createRuntimeMetrics({ defaultMetrics: false });
  createWebhookMetrics(runtime.registry);
  accessMetrics(runtime.registry);
  targetSyncMetrics(runtime.registry);
  const server = new ServerMetrics({ defaultMetrics: false });
  // The index gauges are registered when an index is attached: a stand-in with what they read.
  server.attach({ healthy: true, lastSyncAgeSeconds: 0, freshness: () => [], listen: () => () => undefined } as unknown as DecisionIndex);
  const names = new Set<string>();
  for (const registry of [runtime.registry, server.registry] as Registry[]) {
    for (const m of registry.getMetricsAsArray()) {
      const name = (m as unknown as { name: string }).name;
      names.add(name);
      if (m instanceof Histogram) for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    }
  }
  server.close();
  return names;
}

const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'rate', 'irate', 'increase', 'histogram_quantile', 'by', 'without', 'and', 'or', 'unless',
  'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'absent', 'time', 'le', 'delta', 'deriv', 'clamp_min', 'topk',
]);

/** Metric names of a PromQL expression: identifiers outside label matchers, not functions or keywords. */
function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ').replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ').replace(/"[^"]*"/g, ' ');
  const names = new Set<string>();
  for (const m of withoutLabels.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const next = withoutLabels.slice(m.index! + word.length).trimStart();
    if (PROMQL_WORDS.has(word) || next.startsWith('(')) continue;
    names.add(word);
  }
  return [...names];
}

test('the parser finds metric names, not functions, keywords or label names', () => {
  expect(metricNames('sum by (result) (rate(a_total{result="allowed"}[5m])) > 0 and min(b) == 0').sort()).toEqual(['a_total', 'b']);
});

test('every alert expression references only metrics the code exports, and says what to do', () => {
  const exported = exportedNames();
  const doc = yaml.load(fs.readFileSync(path.join(ROOT, 'config/prometheus/rules.yaml'), 'utf8')) as { spec: { groups: { rules: Rule[] }[] } };
  const rules = rulesOf(doc.spec);
  expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(['RpaAccessOperatorNotReconciling', 'RpaAccessIndexStale', 'RpaAccessWebhookRefusingAll', 'RpaAccessTargetFailing']));
  for (const r of rules) {
    const names = metricNames(r.expr);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect({ alert: r.alert, metric: n, exported: exported.has(n) }).toEqual({ alert: r.alert, metric: n, exported: true });
    expect(r.annotations.description.length).toBeGreaterThan(80);
  }
  // The chart ships the same rules.
  const chart = yaml.load(fs.readFileSync(path.join(ROOT, 'charts/rpa-access/files/prometheus-rules.yaml'), 'utf8'));
  expect(chart).toEqual(doc.spec);
});

test('every dashboard query references only metrics the code exports', () => {
  const exported = exportedNames();
  for (const file of [path.join(ROOT, 'config/grafana/rpa-access.json'), path.join(ROOT, 'charts/rpa-access/files/grafana-dashboard.json')]) {
    const dashboard = JSON.parse(fs.readFileSync(file, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(6);
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) for (const n of metricNames(t.expr)) expect({ panel: p.title, metric: n, exported: exported.has(n) }).toEqual({ panel: p.title, metric: n, exported: true });
    }
  }
});

test('target syncs: counted by result, the time of the last success kept, the series of a deleted target dropped', async () => {
  const registry = createRuntimeMetrics({ defaultMetrics: false }).registry;
  const targets = targetSyncMetrics(registry);
  targets.synced('finance/uipath', 'error', 1_000);
  targets.synced('finance/uipath', 'success', 5_000);
  targets.synced('hr/uipath', 'error', 6_000);
  const text = await registry.metrics();
  expect(text).toContain('rpa_access_target_sync_total{target="finance/uipath",result="error"} 1');
  expect(text).toContain('rpa_access_target_sync_total{target="finance/uipath",result="success"} 1');
  expect(text).toContain('rpa_access_target_last_success_timestamp_seconds{target="finance/uipath"} 5');
  expect(text).not.toContain('rpa_access_target_last_success_timestamp_seconds{target="hr/uipath"}');
  targets.forget('finance/uipath');
  expect(await registry.metrics()).not.toContain('finance/uipath');
});
