/**
 * The three ways of installing rpa-access must not drift apart: the kustomize tree (config/), the
 * Helm chart (charts/rpa-access/) and the image (Dockerfile).
 *
 * How the chart is compared without a helm binary: its RBAC and webhook templates keep the parts
 * that matter (`rules:`, names, roleRefs, webhook rules) as plain YAML, with template expressions
 * only in labels, namespaces and tunables. `stripTemplate()` replaces every `{{ ... }}` (multi-line
 * comments included) with a placeholder and drops the lines that held nothing else (`{{- if }}`,
 * `{{- include ... | nindent 4 }}`); what is left is YAML, parsed and compared field by field with
 * config/. A rule written with a template expression in it would come out as the placeholder (or
 * vanish) and fail the comparison: that is intended, the rules must stay literal. Everything the
 * templates read from `.Values` must exist in values.yaml, and the tunables that config/ hard-codes
 * (security contexts, resources, ports, store Secret) must have the same values there.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { CRD_OUTPUT_DIRS, renderCrdFiles } from '../../src/api/v1alpha1/crds.js';
import { validateDocument } from '../../src/model/validate.js';
import { REPO_ROOT } from '../../scripts/gen-crds.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const PLACEHOLDER = '__TEMPLATE__';
const read = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');
const docs = (text: string): Any[] => yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
const readDocs = (path: string): Any[] => docs(read(path));

/** A Helm template as YAML: `{{ ... }}` -> placeholder; lines holding only placeholders dropped. */
function stripTemplate(text: string): string {
  return text
    .replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, PLACEHOLDER) // comments first: they may quote `{{ }}`
    .replace(/\{\{[\s\S]*?\}\}/g, PLACEHOLDER)
    .split('\n')
    .filter((line) => line.trim() === '' || line.split(PLACEHOLDER).join('').trim() !== '')
    .join('\n');
}

const chartDocs = (template: string): Any[] => docs(stripTemplate(read(join('charts/rpa-access/templates', template))));
const key = (o: Any): string => `${o.kind}/${o.metadata.name}`;
const aggregationLabels = (o: Any): Record<string, string> =>
  Object.fromEntries(Object.entries((o.metadata.labels ?? {}) as Record<string, string>).filter(([k]) => k.startsWith('rbac.authorization.k8s.io/')));

const pkg = JSON.parse(read('package.json'));
const values = yaml.load(read('charts/rpa-access/values.yaml')) as Any;
const chart = yaml.load(read('charts/rpa-access/Chart.yaml')) as Any;
const configRbac = readdirSync(join(REPO_ROOT, 'config/rbac'))
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) => readDocs(join('config/rbac', f)));
const manager = readDocs('config/manager/manager.yaml').find((d) => d.kind === 'Deployment');
const pod = manager.spec.template.spec;
const container = pod.containers[0];
const webhookConfig = readDocs('config/webhook/validating_webhook.yaml')[0];
const mutatingConfig = readDocs('config/webhook/mutating_webhook.yaml')[0];

describe('CRDs', () => {
  test('crds/, config/crd/bases/ and charts/rpa-access/crds/ hold byte-identical generated files', () => {
    for (const { file, content } of renderCrdFiles()) {
      for (const dir of CRD_OUTPUT_DIRS) expect([dir, file, read(join(dir, file)) === content]).toEqual([dir, file, true]);
    }
  });

  test('config/crd/kustomization.yaml lists exactly the generated bases', () => {
    const kustomization = yaml.load(read('config/crd/kustomization.yaml')) as Any;
    expect([...kustomization.resources].sort()).toEqual(renderCrdFiles().map((f) => `bases/${f.file}`).sort());
  });
});

describe('RBAC: chart == config', () => {
  const chartRbac = [...chartDocs('rbac.yaml'), ...chartDocs('serviceaccount.yaml')];

  test('the same objects', () => {
    expect(chartRbac.map(key).sort()).toEqual(configRbac.map(key).sort());
  });

  test.each(configRbac.map((o) => [key(o), o] as const))('%s: same rules, roleRef, subjects, aggregation labels', (_k, want) => {
    const got = chartRbac.find((o) => key(o) === key(want));
    expect(got).toBeDefined();
    expect(got.rules).toEqual(want.rules);
    expect(got.roleRef).toEqual(want.roleRef);
    // The chart puts subjects in the release namespace; config/ in rpa-access-system.
    const subjects = (s: Any[] | undefined): Any[] | undefined => s?.map(({ kind, name }) => ({ kind, name }));
    expect(subjects(got.subjects)).toEqual(subjects(want.subjects));
    expect(aggregationLabels(got)).toEqual(aggregationLabels(want));
  });

  test('the template strip keeps rules literal (no template expression inside a rules block)', () => {
    const text = read('charts/rpa-access/templates/rbac.yaml');
    for (const block of text.split(/^---$/m)) {
      const rules = block.split(/^rules:$/m)[1];
      if (rules !== undefined) expect(rules).not.toContain('{{');
    }
  });
});

describe('RBAC: least privilege', () => {
  const operatorRole = configRbac.find((o) => key(o) === 'ClusterRole/rpa-access-operator');
  const namespacedRole = configRbac.find((o) => key(o) === 'Role/rpa-access-operator');

  test('no wildcards anywhere', () => {
    for (const o of configRbac) {
      for (const r of o.rules ?? []) {
        expect([key(o), [...r.apiGroups, ...r.resources, ...r.verbs].includes('*')]).toEqual([key(o), false]);
      }
    }
  });

  test('the operator ClusterRole holds exactly its needs', () => {
    const flat = (operatorRole.rules as Any[]).flatMap((r) =>
      r.apiGroups.flatMap((g: string) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g}/${res}:${v}${r.resourceNames ? '@' + r.resourceNames.join(',') : ''}`))),
    );
    const kinds = ['users', 'groups', 'roles', 'rolebindings'];
    const expected = [
      ...kinds.flatMap((k) => ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'].map((v) => `rpa-access.io/${k}:${v}`)),
      ...kinds.flatMap((k) => ['get', 'update', 'patch'].map((v) => `rpa-access.io/${k}/status:${v}`)),
      ...kinds.map((k) => `rpa-access.io/${k}/finalizers:update`),
      'events.k8s.io/events:create',
      'events.k8s.io/events:patch',
      '/namespaces:get',
      '/namespaces:list',
      '/namespaces:watch',
      `apiextensions.k8s.io/customresourcedefinitions:get@${kinds.map((k) => `${k}.rpa-access.io`).join(',')}`,
      ...['get', 'update', 'patch'].map((v) => `admissionregistration.k8s.io/validatingwebhookconfigurations:${v}@${webhookConfig.metadata.name}`),
      ...['get', 'update', 'patch'].map((v) => `admissionregistration.k8s.io/mutatingwebhookconfigurations:${v}@${mutatingConfig.metadata.name}`),
      'authentication.k8s.io/tokenreviews:create',
      'authorization.k8s.io/subjectaccessreviews:create',
    ];
    expect(flat.sort()).toEqual(expected.sort());
  });

  test('Secrets and Leases only in the operator namespace', () => {
    expect(namespacedRole.metadata.namespace).toBe('rpa-access-system');
    expect(namespacedRole.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update', 'patch'] },
    ]);
  });

  test('user-facing roles aggregate into view, edit and admin; only admin may bind roles', () => {
    const role = (name: string): Any => configRbac.find((o) => key(o) === `ClusterRole/${name}`);
    expect(aggregationLabels(role('rpa-access-viewer'))).toEqual({ 'rbac.authorization.k8s.io/aggregate-to-view': 'true' });
    expect(aggregationLabels(role('rpa-access-editor'))).toEqual({ 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' });
    expect(aggregationLabels(role('rpa-access-admin'))).toEqual({ 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' });
    expect(role('rpa-access-viewer').rules[0].verbs).toEqual(['get', 'list', 'watch']);
    const binders = configRbac.filter((o) => (o.rules ?? []).some((r: Any) => r.verbs.includes('bind')));
    expect(binders.map(key)).toEqual(['ClusterRole/rpa-access-admin']);
    expect(role('rpa-access-admin').rules).toContainEqual({ apiGroups: ['rpa-access.io'], resources: ['roles'], verbs: ['bind'] });
  });

  test('rpa-access-decision-reader: get on the virtual resource decisions.rpa-access.io, bound per namespace (not aggregated)', () => {
    const role = configRbac.find((o) => key(o) === 'ClusterRole/rpa-access-decision-reader');
    expect(role.rules).toEqual([{ apiGroups: ['rpa-access.io'], resources: ['decisions'], verbs: ['get'] }]);
    expect(aggregationLabels(role)).toEqual({});
  });

  test('the operator ServiceAccount is the one the Deployment runs as and the bindings name', () => {
    expect(pod.serviceAccountName).toBe('rpa-access-operator');
    for (const b of configRbac.filter((o) => o.kind.endsWith('Binding'))) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'rpa-access-operator', namespace: 'rpa-access-system' }]);
    }
  });
});

describe('manager Deployment', () => {
  test('hardened security context', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // A read-only root filesystem needs a writable /tmp.
    expect(container.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(container.resources.requests).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
    expect(container.resources.limits).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
  });

  test('runs `rpa-access operator` of this version with webhook, probe and metrics ports', () => {
    expect(container.image).toBe(`ghcr.io/rpa-access/rpa-access:${pkg.version}`);
    expect(container.args[0]).toBe('operator');
    expect(container.args).toEqual(expect.arrayContaining(['--webhook-port=9443', '--health-port=8081', '--metrics-port=8080', '--leader-elect']));
    expect(manager.spec.replicas).toBe(2);
    const ports = Object.fromEntries(container.ports.map((p: Any) => [p.name, p.containerPort]));
    expect(ports).toEqual({ webhook: 9443, health: 8081, metrics: 8080 });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(container.env).toContainEqual({ name: 'RPA_ACCESS_STORE', valueFrom: { secretKeyRef: { name: 'rpa-access-store', key: 'url' } } });
  });

  test('values.yaml defaults equal config/manager', () => {
    expect(values.podSecurityContext).toEqual(pod.securityContext);
    expect(values.securityContext).toEqual(container.securityContext);
    expect(values.resources).toEqual(container.resources);
    expect(values.replicas).toBe(manager.spec.replicas);
    expect(values.image.repository).toBe(container.image.split(':')[0]);
    expect(chart.appVersion).toBe(pkg.version);
    expect({ port: values.webhook.port, health: values.health.port, metrics: values.metrics.port }).toEqual({ port: 9443, health: 8081, metrics: 8080 });
    expect(values.store).toEqual({ existingSecret: 'rpa-access-store', key: 'url' });
    expect(values.probes.liveness).toEqual(container.livenessProbe);
    expect(values.probes.readiness).toEqual(container.readinessProbe);
  });

  test('the chart Deployment reads its security contexts and resources from those values', () => {
    const text = read('charts/rpa-access/templates/deployment.yaml');
    expect(text).toContain('toYaml .Values.podSecurityContext');
    expect(text).toContain('toYaml .Values.securityContext');
    expect(text).toContain('toYaml .Values.resources');
    const [deployment] = chartDocs('deployment.yaml');
    expect(deployment.spec.template.spec.serviceAccountName).toBe(pod.serviceAccountName);
    expect(deployment.spec.template.spec.containers[0].args[0]).toBe('operator');
    expect(deployment.spec.template.spec.containers[0].volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
  });
});

describe('webhook', () => {
  const [webhook] = webhookConfig.webhooks;

  test('config: the four kinds, CREATE/UPDATE/DELETE, /validate, Fail, None, v1, 5 s, no caBundle', () => {
    expect(webhookConfig.metadata.name).toBe('rpa-access-validating-webhook');
    expect(webhook).toMatchObject({
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      timeoutSeconds: 5,
      clientConfig: { service: { name: 'rpa-access-webhook', namespace: 'rpa-access-system', path: '/validate', port: 443 } },
      rules: [
        {
          apiGroups: ['rpa-access.io'],
          apiVersions: ['v1alpha1'],
          operations: ['CREATE', 'UPDATE', 'DELETE'],
          resources: ['users', 'groups', 'roles', 'rolebindings'],
          scope: 'Namespaced',
        },
      ],
    });
    // The operator patches caBundle in; an empty one here would be reset by every `kubectl apply`.
    expect(webhook.clientConfig.caBundle).toBeUndefined();
  });

  test('the Service forwards 443 to the container port named webhook', () => {
    const [service] = readDocs('config/webhook/service.yaml');
    expect(service.metadata.name).toBe(webhook.clientConfig.service.name);
    expect(service.spec.ports).toEqual([{ name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
    expect(service.spec.selector).toEqual(manager.spec.selector.matchLabels);
  });

  test('mutating config: the finalizer at CREATE of the four kinds, /mutate, Ignore (never a guard), no caBundle', () => {
    expect(mutatingConfig.kind).toBe('MutatingWebhookConfiguration');
    expect(mutatingConfig.metadata.name).toBe('rpa-access-mutating-webhook');
    const [m] = mutatingConfig.webhooks;
    expect(m).toMatchObject({
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      reinvocationPolicy: 'Never',
      timeoutSeconds: 5,
      clientConfig: { service: { ...webhook.clientConfig.service, path: '/mutate' } },
      rules: [{ ...webhook.rules[0], operations: ['CREATE'] }],
    });
    expect(m.clientConfig.caBundle).toBeUndefined();
    const kustomization = yaml.load(read('config/webhook/kustomization.yaml')) as Any;
    expect(kustomization.resources).toContain('mutating_webhook.yaml');
  });

  test('chart == config (mutating)', () => {
    const got = chartDocs('webhook.yaml').find((d) => d.kind === 'MutatingWebhookConfiguration');
    expect(got.metadata.name).toBe(mutatingConfig.metadata.name);
    const [w] = got.webhooks;
    const [want] = mutatingConfig.webhooks;
    expect({ ...w, timeoutSeconds: undefined, clientConfig: undefined }).toEqual({ ...want, timeoutSeconds: undefined, clientConfig: undefined });
    expect({ ...w.clientConfig.service, namespace: undefined }).toEqual({ ...want.clientConfig.service, namespace: undefined });
  });

  test('chart == config', () => {
    const [got] = chartDocs('webhook.yaml');
    expect(got.metadata.name).toBe(webhookConfig.metadata.name);
    const [w] = got.webhooks;
    expect(w.name).toBe(webhook.name);
    expect(w.rules).toEqual(webhook.rules);
    expect(w.admissionReviewVersions).toEqual(webhook.admissionReviewVersions);
    expect(w.sideEffects).toBe(webhook.sideEffects);
    expect(w.matchPolicy).toBe(webhook.matchPolicy);
    expect({ ...w.clientConfig.service, namespace: undefined }).toEqual({ ...webhook.clientConfig.service, namespace: undefined });
    expect(w.clientConfig.caBundle).toBeUndefined();
    expect(values.webhook.failurePolicy).toBe(webhook.failurePolicy);
    expect(values.webhook.timeoutSeconds).toBe(webhook.timeoutSeconds);
    const services = chartDocs('service.yaml');
    expect(services.find((s) => s.metadata.name === 'rpa-access-webhook').spec.ports).toEqual(
      readDocs('config/webhook/service.yaml')[0].spec.ports,
    );
  });
});

describe('chart templates', () => {
  const dir = 'charts/rpa-access/templates';
  const templates = readdirSync(join(REPO_ROOT, dir)).map((f) => [f, read(join(dir, f))] as const);

  test('Chart.yaml', () => {
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'rpa-access', type: 'application', appVersion: pkg.version });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test.each(templates)('%s: every .Values reference exists in values.yaml', (_f, text) => {
    for (const [, path] of text.matchAll(/\.Values((?:\.[A-Za-z0-9_]+)+)/g)) {
      let node: Any = values;
      for (const seg of path!.slice(1).split('.')) {
        expect([path, node !== null && typeof node === 'object' && seg in node]).toEqual([path, true]);
        node = node[seg];
      }
    }
  });

  test.each(templates)('%s: balanced {{ }} and blocks', (_f, text) => {
    const code = text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
    const actions = [...code.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)].map((m) => m[1]!);
    expect(code.split('{{').length).toBe(code.split('}}').length);
    const opens = actions.filter((a) => /^(if|with|range|define|block)\b/.test(a)).length;
    const ends = actions.filter((a) => /^end\b/.test(a)).length;
    expect(ends).toBe(opens);
  });

  test('optional parts are conditional', () => {
    expect(read(join(dir, 'servicemonitor.yaml'))).toMatch(/^\{\{- if \.Values\.serviceMonitor\.enabled \}\}/);
    expect(read(join(dir, 'certificate.yaml'))).toMatch(/^\{\{- if eq \.Values\.webhook\.certMode "cert-manager" \}\}/);
    expect(['self-signed', 'cert-manager']).toContain(values.webhook.certMode);
  });
});

describe('samples', () => {
  const files = readdirSync(join(REPO_ROOT, 'config/samples')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');

  test.each(files)('%s is valid', (file) => {
    for (const doc of readDocs(join('config/samples', file))) {
      if (doc.kind === 'Namespace') continue;
      const result = validateDocument(doc);
      expect([file, doc.metadata.name, result.problems]).toEqual([file, doc.metadata.name, []]);
      expect(doc.metadata.namespace).toBe('finance');
    }
  });

  test('all four kinds are shown', () => {
    const kinds = new Set(files.flatMap((f) => readDocs(join('config/samples', f)).map((d) => d.kind)));
    expect([...kinds].sort()).toEqual(['Group', 'Namespace', 'Role', 'RoleBinding', 'User']);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((l) => l.trim());

  test('multi-stage: node:24-bookworm build, node:24-bookworm-slim runtime', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms).toEqual(['FROM node:24-bookworm AS build', 'FROM node:24-bookworm-slim']);
    expect(dockerfile).toMatch(/RUN npm ci\b/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
  });

  test('runtime: dist, node_modules, package.json, crds; non-root; the package bin as entrypoint', () => {
    const runtime = instructions.slice(instructions.findIndex((l) => l === 'FROM node:24-bookworm-slim'));
    for (const what of ['/app/dist', '/app/node_modules', '/app/package.json', 'crds']) {
      expect(runtime.some((l) => l.startsWith('COPY ') && l.includes(what))).toBe(true);
    }
    const user = runtime.filter((l) => l.startsWith('USER ')).pop();
    expect(user).toMatch(/^USER (node|1000(:1000)?)$/);
    expect(runtime).toContain(`ENTRYPOINT ["node", "${pkg.bin['rpa-access']}"]`);
    expect(runtime).toContain('CMD ["operator"]');
  });

  test('.dockerignore keeps what the build copies', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const needed of ['src', 'crds', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored).not.toContain(needed);
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
  });
});

// Renders the kustomize tree when kubectl is installed (it is on the CI machines).
const kubectl = (process.env.PATH ?? '').split(':').map((d) => join(d, 'kubectl')).find((p) => existsSync(p));
(kubectl ? describe : describe.skip)('kubectl kustomize', () => {
  test('config/default renders everything into rpa-access-system', () => {
    const out = docs(execFileSync(kubectl!, ['kustomize', join(REPO_ROOT, 'config/default')], { encoding: 'utf8' }));
    expect(out.map(key).sort()).toEqual(
      [
        ...renderCrdFiles().map((f) => `CustomResourceDefinition/${f.file.replace(/\.yaml$/, '')}`),
        ...configRbac.map(key),
        'Namespace/rpa-access-system',
        'Deployment/rpa-access-operator',
        'Service/rpa-access-metrics',
        'Service/rpa-access-webhook',
        'ValidatingWebhookConfiguration/rpa-access-validating-webhook',
        'MutatingWebhookConfiguration/rpa-access-mutating-webhook',
      ].sort(),
    );
    const clusterScoped = new Set(['CustomResourceDefinition', 'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']);
    for (const o of out) {
      if (!clusterScoped.has(o.kind)) expect([key(o), o.metadata.namespace]).toEqual([key(o), 'rpa-access-system']);
    }
  });

  test('config/samples renders', () => {
    const out = docs(execFileSync(kubectl!, ['kustomize', join(REPO_ROOT, 'config/samples')], { encoding: 'utf8' }));
    expect(out.length).toBeGreaterThanOrEqual(6);
  });
});
