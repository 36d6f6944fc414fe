/**
 * The UiPath target end to end: CRs in (real kube-apiserver + etcd, the operator), UiPath state
 * out (the strict UiPath double, test/support/uipath). The seeds' John Smith in two tenants
 * pushed into two UiPath tenants; a second sync writes nothing; drift put back within the period
 * with an Event; an outage of 30 s (status says so, nothing lost, converges after); rate
 * limiting; credential rotation; Observe writes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventsFor, eventually, installCrds, kubeConfigOf, kubectl } from '../support/kube.js';
import { startUiPathDouble, type UiPathDouble } from '../support/uipath/index.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });

interface OrchestratorStatus {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  observedRevision?: number;
  driftCorrected?: number;
  counts?: Record<string, number>;
  notRepresentable?: string[];
  conflicts?: string[];
  lastSyncTime?: string;
}

/** The seeds' John Smith: inherited rights (automation-users) and explicit ones (his own bindings). */
function tenantDocs(ns: string, folder: string): string {
  return `
apiVersion: rpa-access.io/v1alpha1
kind: Group
metadata: {name: automation-users, namespace: ${ns}}
spec: {displayName: Automation Users}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: john-smith, namespace: ${ns}}
spec: {email: john.smith@example.com, fullName: John Smith, groups: [automation-users]}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ${ns}-bot, namespace: ${ns}}
spec: {email: ${ns}-bot@example.com, type: Robot}
---
apiVersion: rpa-access.io/v1alpha1
kind: Role
metadata: {name: approver, namespace: ${ns}}
spec: {scope: Folder, permissions: [{resource: Queues, actions: [View, Edit]}, {resource: Triggers, actions: [View]}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: automation-users-run, namespace: ${ns}}
spec: {roleRef: {name: automation-user}, folder: ${folder}, subjects: [{kind: Group, name: automation-users}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-approves, namespace: ${ns}}
spec: {roleRef: {name: approver}, folder: ${folder}/Approvals, subjects: [{kind: User, name: john-smith}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-one-process, namespace: ${ns}}
spec: {roleRef: {name: automation-user}, folder: ${folder}, resources: [{kind: Process, name: invoice-bot}], subjects: [{kind: User, name: john-smith}]}
`;
}

function orchestratorDoc(ns: string, uip: UiPathDouble, tenant: string, extra = ''): string {
  return `
apiVersion: rpa-access.io/v1alpha1
kind: Orchestrator
metadata: {name: uipath, namespace: ${ns}}
spec:
  type: UiPath
  url: ${uip.orchestratorUrl(tenant)}
  identityUrl: ${uip.identityUrl}
  credentialsSecretRef: {name: uipath-app}
  syncPeriod: 3s
${extra}`;
}

suite('UiPath target through the operator', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let uip: UiPathDouble;
  let operator: OperatorHandle | undefined;

  const apply = async (docs: string) => {
    const r = await kubectl(cp.kubeconfigPath, ['apply', '-f', '-'], docs);
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  };
  const status = async (ns: string): Promise<OrchestratorStatus | undefined> => {
    try {
      const o = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'rpa-access.io', version: 'v1alpha1', plural: 'orchestrators', namespace: ns, name: 'uipath' })) as { status?: OrchestratorStatus };
      return o.status;
    } catch {
      return undefined;
    }
  };
  /** The operator's /metrics: target syncs are counted there (the RpaAccessTargetFailing alert reads them). */
  const metricsText = async () => (await fetch(`http://127.0.0.1:${operator!.healthPort}/metrics`)).text();
  const condition = async (ns: string, type: string) => (await status(ns))?.conditions?.find((c) => c.type === type);
  const secret = async (ns: string, clientSecret: string, create = true) => {
    const core = kc.makeApiClient(CoreV1Api);
    const body = { metadata: { name: 'uipath-app', namespace: ns }, stringData: { clientId: uip.credentials.clientId, clientSecret } };
    if (create) await core.createNamespacedSecret({ namespace: ns, body });
    else await core.replaceNamespacedSecret({ namespace: ns, name: 'uipath-app', body });
  };

  beforeAll(async () => {
    uip = await startUiPathDouble({ tenants: ['finance', 'hr', 'ops'] });
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    const storeUrl = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-e2e-uipath-'));
    operator = await startOperator({
      kubeconfig: kc, store: storeUrl, log, healthPort: 0, concurrency: 4, leaderElection: false,
      targets: { clientOptions: { maxAttempts: 3, backoffBaseMs: 100, maxBackoffMs: 2000, timeoutMs: 5000 } },
    });
    await operator.whenRunning();
    for (const ns of ['finance', 'hr', 'ops']) await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    await uip?.stop();
  }, 60_000);

  test('John Smith in two tenants lands in two UiPath tenants, exactly as mapped; a second sync writes nothing', async () => {
    await apply(tenantDocs('finance', 'Finance'));
    await apply(tenantDocs('hr', 'HR'));
    await secret('finance', uip.credentials.clientSecret);
    await secret('hr', uip.credentials.clientSecret);
    await apply(orchestratorDoc('finance', uip, 'finance'));
    await apply(orchestratorDoc('hr', uip, 'hr'));

    for (const ns of ['finance', 'hr']) {
      await eventually(`${ns} Synced`, async () => (await condition(ns, 'Synced'))?.status === 'True', 60_000, 250);
    }
    for (const [ns, folder] of [['finance', 'Finance'], ['hr', 'HR']] as const) {
      const snap = uip.snapshot(ns);
      expect(snap.users['john.smith@example.com']).toMatchObject({ Type: 'DirectoryUser', roles: [] });
      expect(snap.users[`${ns}-bot`]).toMatchObject({ Type: 'DirectoryRobot', roles: ['Robot'] });
      expect(snap.users[`${ns}-automation-users`]).toMatchObject({ Type: 'DirectoryGroup', roles: ['Allow to be Automation User'] });
      expect(snap.folderRoles[folder]).toEqual({ [`${ns}-automation-users`]: ['Automation User'] });
      expect(snap.folderRoles[`${folder}/Approvals`]).toEqual({ 'john.smith@example.com': ['approver'] });
      expect(snap.roles.approver).toMatchObject({ Type: 'Folder', IsStatic: false, permissions: ['Queues.Edit', 'Queues.View', 'Schedules.View'] });
      const st = (await status(ns))!;
      // The binding narrowed to one process is not pushed wider: it is listed.
      expect(st.notRepresentable).toEqual([expect.stringContaining('RoleBinding/john-one-process: narrowed by resources')]);
      expect(st.counts).toMatchObject({ users: 2, groups: 1, roles: 1, folders: 2 });
      expect(st.observedRevision).toBeGreaterThan(0);
    }
    const metrics = await metricsText();
    for (const ns of ['finance', 'hr']) {
      expect(metrics).toMatch(new RegExp(`rpa_access_target_sync_total\\{target="${ns}/uipath",result="success"\\} [1-9]`));
      expect(metrics).toMatch(new RegExp(`rpa_access_target_last_success_timestamp_seconds\\{target="${ns}/uipath"\\} \\d`));
    }
    // One Identity user serves both tenants (users belong to the organization); groups are per tenant.
    expect(uip.snapshot('finance').groups).toMatchObject({ 'finance-automation-users': ['john.smith@example.com'], 'hr-automation-users': ['john.smith@example.com'] });
    const changes = (await eventsFor(kc, 'finance', 'uipath')).filter((e) => e.reason === 'UiPathChanged');
    expect(changes.map((e) => e.note)).toEqual(expect.arrayContaining([expect.stringContaining('created User/john.smith@example.com')]));

    // Periodic syncs (every 3 s) now only read.
    await operator!.idle();
    uip.calls.reset();
    const before = (await status('finance'))!.lastSyncTime;
    await eventually('another periodic sync', async () => (await status('finance'))?.lastSyncTime !== before, 15_000, 250);
    expect(uip.calls.writes()).toBe(0);
    expect(uip.calls.reads()).toBeGreaterThan(0);
  }, 120_000);

  test('drift: a role removed by hand in UiPath comes back within the period, and an Event says so', async () => {
    const t = uip.tenant('finance');
    const bot = uip.state().tenants.finance!.users.find((u) => u.UserName === 'finance-bot')!;
    t.assignRoles(bot.Id, []);
    expect(uip.snapshot('finance').users['finance-bot']!.roles).toEqual([]);
    await eventually('Robot role back', () => uip.snapshot('finance').users['finance-bot']!.roles.includes('Robot') || undefined, 15_000, 250);
    const drift = await eventually('DriftCorrected event', async () => (await eventsFor(kc, 'finance', 'uipath')).find((e) => e.reason === 'DriftCorrected'), 10_000, 250);
    expect(drift.note).toContain('TenantRoles/robot:finance-bot');
    await eventually('driftCorrected counted', async () => ((await status('finance'))?.driftCorrected ?? 0) >= 1, 10_000, 250);
  }, 60_000);

  test('an outage of 30 s: status says TargetUnreachable, a change made meanwhile is not lost, and it converges after', async () => {
    uip.faults.outage(true);
    await eventually('TargetUnreachable', async () => (await condition('finance', 'Ready'))?.reason === 'TargetUnreachable', 20_000, 250);
    const ready = (await condition('finance', 'Ready'))!;
    expect(ready.status).toBe('False');
    expect(ready.message).toMatch(/UiPath is unreachable/);
    expect(await metricsText()).toMatch(/rpa_access_target_sync_total\{target="finance\/uipath",result="error"\} [1-9]/);
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-approves-more, namespace: finance}
spec: {roleRef: {name: approver}, folder: Finance/Payments, subjects: [{kind: User, name: john-smith}]}
`);
    await new Promise((r) => setTimeout(r, 30_000 - 5_000));
    uip.faults.outage(false);
    await eventually('converged after the outage', () => uip.snapshot('finance').folderRoles['Finance/Payments']?.['john.smith@example.com']?.includes('approver') || undefined, 30_000, 250);
    await eventually('Synced again', async () => (await condition('finance', 'Synced'))?.status === 'True' && (await condition('finance', 'Ready'))?.status === 'True', 20_000, 250);
    // Nothing lost: what was there before is still there.
    expect(uip.snapshot('finance').folderRoles['Finance/Approvals']).toEqual({ 'john.smith@example.com': ['approver'] });
  }, 120_000);

  test('rate limiting: 429s with Retry-After are waited out, and the sync completes', async () => {
    uip.calls.reset();
    uip.faults.rateLimit({ calls: 2, retryAfterSeconds: 1, match: 'Users_Get' });
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-views-audit, namespace: finance}
spec: {roleRef: {name: folder-viewer}, folder: Finance/Audit, subjects: [{kind: User, name: john-smith}]}
`);
    await eventually('pushed despite 429s', () => uip.snapshot('finance').folderRoles['Finance/Audit']?.['john.smith@example.com'] || undefined, 30_000, 250);
    expect(uip.calls.list().filter((c) => c.status === 429).length).toBe(2);
  }, 60_000);

  test('credential rotation: the new secret is used at once, without a restart', async () => {
    uip.setApplication({ clientSecret: 'rotated-secret-0123456789' });
    uip.expireAllTokens();
    await eventually('Unauthorized', async () => (await condition('hr', 'Ready'))?.reason === 'Unauthorized', 20_000, 250);
    const c = (await condition('hr', 'Ready'))!;
    expect(c.message).not.toContain('rotated-secret-0123456789');
    await secret('hr', 'rotated-secret-0123456789', false);
    await secret('finance', 'rotated-secret-0123456789', false);
    await eventually('hr Ready again', async () => (await condition('hr', 'Ready'))?.status === 'True', 20_000, 250);
    const events = await eventsFor(kc, 'hr');
    expect(JSON.stringify(events)).not.toContain('rotated-secret-0123456789');
  }, 60_000);

  test('Observe reads and reports, and writes nothing', async () => {
    await apply(tenantDocs('ops', 'Ops'));
    await secret('ops', 'rotated-secret-0123456789');
    await operator!.idle();
    uip.calls.reset();
    await apply(orchestratorDoc('ops', uip, 'ops', '  managementPolicy: Observe\n'));
    const synced = await eventually('ChangesPending', async () => {
      const c = await condition('ops', 'Synced');
      return c?.reason === 'ChangesPending' ? c : undefined;
    }, 30_000, 250);
    expect(synced.status).toBe('False');
    const writes = uip.calls.list().filter((c) => c.method !== 'GET' && c.tenant === 'ops');
    expect(writes).toEqual([]);
    expect(uip.calls.list().filter((c) => c.method !== 'GET' && !c.path.includes('/connect/token') && c.path.includes('/api/'))).toEqual([]);
    expect(uip.snapshot('ops').users['john.smith@example.com']).toBeUndefined();
    const pending = await eventually('DriftDetected event', async () => (await eventsFor(kc, 'ops', 'uipath')).find((e) => e.reason === 'DriftDetected'), 10_000, 250);
    expect(pending.note).toMatch(/managementPolicy Observe: \d+ change\(s\) pending/);
  }, 60_000);
  test('expiresAt: the grant is removed from UiPath when it expires', async () => {
    const at = new Date(Date.now() + 8_000).toISOString();
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-temp, namespace: finance}
spec: {roleRef: {name: approver}, folder: Finance/Temp, expiresAt: "${at}", subjects: [{kind: User, name: john-smith}]}
`);
    await eventually('temporary grant pushed', () => uip.snapshot('finance').folderRoles['Finance/Temp']?.['john.smith@example.com'] || undefined, 15_000, 250);
    await eventually('removed once expired', () => (Date.now() > Date.parse(at) && !uip.snapshot('finance').folderRoles['Finance/Temp']?.['john.smith@example.com']) || undefined, 20_000, 250);
  }, 60_000);

  test('deletionPolicy: Retain strips what left Git and keeps it; Delete deletes it (folders bottom-up, when empty)', async () => {
    await kubectl(cp.kubeconfigPath, ['delete', 'rolebinding.rpa-access.io', 'john-views-audit', 'john-temp', '-n', 'finance']);
    await eventually('assignment removed (Retain)', () => (!uip.snapshot('finance').folderRoles['Finance/Audit']?.['john.smith@example.com']) || undefined, 20_000, 250);
    expect(uip.snapshot('finance').folders).toEqual(expect.arrayContaining(['Finance/Audit', 'Finance/Temp']));
    await apply(orchestratorDoc('finance', uip, 'finance', '  deletionPolicy: Delete\n'));
    await eventually('folders deleted (Delete)', () => (!uip.snapshot('finance').folders.includes('Finance/Audit') && !uip.snapshot('finance').folders.includes('Finance/Temp')) || undefined, 20_000, 250);
    expect(uip.snapshot('finance').folders).toEqual(expect.arrayContaining(['Finance', 'Finance/Approvals', 'Finance/Payments', 'Shared']));
    const deleted = (await eventsFor(kc, 'finance', 'uipath')).filter((e) => e.reason === 'UiPathChanged' && e.note.startsWith('deleted Folder/'));
    expect(deleted.map((e) => e.note)).toEqual(expect.arrayContaining([expect.stringContaining('deleted Folder/Finance/Audit')]));
  }, 60_000);

  test('a missing scope: status says Forbidden and names it; granting it heals', async () => {
    uip.setScopes(['OR.Users', 'PM.User', 'PM.Group', 'PM.RobotAccount']);
    uip.expireAllTokens();
    const c = await eventually('Forbidden', async () => {
      const r = await condition('hr', 'Synced');
      return r?.reason === 'Forbidden' ? r : undefined;
    }, 20_000, 250);
    expect(c.message).toContain('OR.Folders');
    uip.setScopes(['OR.Users', 'OR.Folders', 'PM.User', 'PM.Group', 'PM.RobotAccount']);
    await eventually('hr Synced again', async () => (await condition('hr', 'Synced'))?.status === 'True', 30_000, 250);
  }, 60_000);
});
