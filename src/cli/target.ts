/**
 * `rpa-access sync` and `rpa-access import` (contract section 8): a tenant of the store pushed
 * into the UiPath Orchestrator tenant an `Orchestrator` document describes, and an existing
 * UiPath tenant read into documents. Credentials come from RPA_ACCESS_TARGET_CLIENT_ID and
 * RPA_ACCESS_TARGET_CLIENT_SECRET, never from a file or a flag (they would land in shell history).
 *
 * sync exits 0 when done or nothing is to do, 2 when conflicts were left (listed) or, with
 * --exit-code, when a dry run or an Observe run finds changes pending; 1 on any error.
 */
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { parseOrchestratorDocument, TargetSpecError, type TargetConfig } from '../targets/orchestrator.js';
import type { Credentials } from '../targets/uipath/client.js';
import { hasChanges } from '../targets/uipath/plan.js';
import { CliError, EXIT_OK, printJson, withStore, type CliContext, type OutputFormat } from './context.js';

const EXIT_PENDING = 2;

export interface SyncCommandOptions {
  tenant: string;
  target: string;
  dryRun?: boolean;
  exitCode?: boolean;
  output: OutputFormat;
}

export interface ImportCommandOptions {
  tenant: string;
  target: string;
  outputDir?: string;
}

function readTarget(file: string, tenant: string): { config: TargetConfig; document: unknown } {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the target file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
  } catch (err) {
    throw new CliError(`${file}: invalid YAML: ${(err as { reason?: string }).reason ?? 'syntax error'}`);
  }
  const orchestrators = docs.filter((d) => (d as { kind?: unknown }).kind === 'Orchestrator');
  if (orchestrators.length !== 1) throw new CliError(`${file}: expected one Orchestrator document, found ${orchestrators.length}`);
  try {
    const { config, document } = parseOrchestratorDocument(orchestrators[0], tenant);
    return { config, document };
  } catch (err) {
    if (err instanceof TargetSpecError) throw new CliError(`${file}: Orchestrator: ${err.message}`);
    throw err;
  }
}

function credentials(ctx: CliContext): Credentials {
  const clientId = ctx.io.env.RPA_ACCESS_TARGET_CLIENT_ID;
  const clientSecret = ctx.io.env.RPA_ACCESS_TARGET_CLIENT_SECRET;
  if (!clientId || !clientSecret) throw new CliError('set RPA_ACCESS_TARGET_CLIENT_ID and RPA_ACCESS_TARGET_CLIENT_SECRET to the external application\'s client id and secret');
  return { clientId, clientSecret };
}

/** UiPath's errors become one CLI line (they already name the call, and never hold the secret). */
async function uipathCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if ((err as Error).name === 'UiPathError') throw new CliError(`UiPath: ${(err as Error).message}`);
    throw err;
  }
}

export async function syncCommand(ctx: CliContext, o: SyncCommandOptions): Promise<number> {
  const { config } = readTarget(o.target, o.tenant);
  const creds = credentials(ctx);
  const { syncTenant } = await import('../targets/uipath/sync.js');
  return withStore(ctx, {}, async (store, description) => {
    const snapshot = await store!.loadTenant(o.tenant);
    if (!snapshot) throw new CliError(`tenant ${o.tenant} does not exist in the store ${description}`);
    const observeOnly = Boolean(o.dryRun) || config.managementPolicy === 'Observe';
    const result = await uipathCall(() => syncTenant({ config, credentials: creds, store: store!, state: snapshot.state, dryRun: Boolean(o.dryRun), logger: ctx.logger }));
    const s = result.summary;
    ctx.logger.debug({ target: config.id, reads: result.calls.reads, writes: result.calls.writes, retries: result.calls.retries }, 'UiPath calls');
    if (o.output === 'json') printJson(ctx, s);
    else {
      const suffix = o.dryRun ? ' (dry run)' : config.managementPolicy === 'Observe' ? ' (Observe: not applied)' : '';
      for (const action of ['created', 'updated', 'deleted'] as const) for (const e of s[action]) ctx.out(`${action} ${e}${suffix}`);
      for (const e of s.unchanged) ctx.out(`unchanged ${e}`);
      for (const e of s.notRepresentable) ctx.out(`not representable ${e}`);
      for (const e of s.conflicts) ctx.out(`conflict ${e}`);
      ctx.out(`${config.id} -> ${config.url}: ${s.created.length} created, ${s.updated.length} updated, ${s.deleted.length} deleted, ${s.unchanged.length} unchanged${suffix}; ${result.calls.reads} reads, ${result.calls.writes} writes`);
    }
    if (result.error) {
      const failed = result.failedSteps;
      throw new CliError(`UiPath: ${result.error.message} (${failed} step${failed === 1 ? '' : 's'} not done; run sync again)`);
    }
    if (observeOnly && o.exitCode && hasChanges(result.plan)) return EXIT_PENDING;
    if (s.conflicts.length > 0) return EXIT_PENDING;
    return EXIT_OK;
  });
}

export async function importCommand(ctx: CliContext, o: ImportCommandOptions): Promise<number> {
  const { config, document } = readTarget(o.target, o.tenant);
  const creds = credentials(ctx);
  const { newClient, observe, ledgerScopes } = await import('../targets/uipath/sync.js');
  const { importUiPath } = await import('../targets/uipath/import.js');
  return withStore(ctx, {}, async (store) => {
    const client = newClient(config, creds);
    const { observed, organizationId } = await uipathCall(() => observe(client, store!, config));
    const result = importUiPath(observed, config);
    const text = result.documents.map((d) => yaml.dump(d, { lineWidth: 120, noRefs: true })).join('---\n');
    for (const w of result.warnings) ctx.warn(w);
    if (o.outputDir) {
      fs.mkdirSync(o.outputDir, { recursive: true });
      fs.writeFileSync(path.join(o.outputDir, `${config.tenant}.yaml`), text);
      if (Object.keys(result.roleMap).length > 0) {
        const d = document as { spec: Record<string, unknown> };
        const target = { ...d, spec: { ...d.spec, roleMap: { ...(d.spec.roleMap as Record<string, string> | undefined), ...result.roleMap } } };
        fs.writeFileSync(path.join(o.outputDir, 'orchestrator.yaml'), yaml.dump(target, { lineWidth: 120 }));
        ctx.warn(`role names that are not object names were renamed; ${path.join(o.outputDir, 'orchestrator.yaml')} holds the target with the roleMap it needs`);
      }
      ctx.err(`wrote ${result.documents.length} documents to ${path.join(o.outputDir, `${config.tenant}.yaml`)}`);
    } else {
      ctx.io.stdout(text);
      if (Object.keys(result.roleMap).length > 0) ctx.warn(`add to the Orchestrator's spec.roleMap: ${JSON.stringify(result.roleMap)}`);
    }
    // Importing hands the objects over to rpa-access: the target manages them from now on.
    const scopes = ledgerScopes(config, organizationId);
    const identityKinds = new Set(['IdentityUser', 'RobotAccount', 'IdentityGroup']);
    await store!.recordTargetObjects(config.id, {
      add: result.claims.map((c) => ({ scope: identityKinds.has(c.kind) ? scopes.identity : scopes.orchestrator, kind: c.kind, externalId: String(c.id), name: c.name })),
    });
    return EXIT_OK;
  });
}
