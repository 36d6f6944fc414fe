/**
 * `rpa-access permissions --tenant T --user U [--output json]`: everything a user may do, each
 * permission with where it holds and where it comes from (the seeds' "Check Permissions"
 * window: inherited and explicit rights together). An unknown tenant or user is an error.
 */
import { ALL_PERMISSIONS, parsePermission } from '../model/catalog.js';
import { TenantIndex, type PermissionGrant } from '../model/engine.js';
import { CliError, EXIT_OK, printJson, type CliContext, type OutputFormat } from './context.js';
import { tenantOf, withTenant, type TenantOption, type TenantSourceOptions } from './tenant-source.js';

export interface PermissionsCommandOptions extends TenantOption, TenantSourceOptions {
  user: string;
  output: OutputFormat;
}

const catalogOrder = new Map(ALL_PERMISSIONS.map((p, i) => [p, i]));

function folderColumn(row: PermissionGrant): string {
  if (row.folder !== null) return row.folder;
  return parsePermission(row.permission)?.scope === 'Folder' ? '(every folder)' : '(tenant)';
}

function limitsColumn(row: PermissionGrant): string {
  const parts: string[] = [];
  if (row.resources) parts.push(`only ${row.resources.map((r) => `${r.kind}/${r.name}`).join(', ')}`);
  if (row.environment !== undefined) parts.push(`environment ${row.environment}`);
  if (row.expiresAt !== undefined) parts.push(`until ${row.expiresAt}`);
  if (row.sessionExpiresAt !== undefined) parts.push(`login session until ${row.sessionExpiresAt}`);
  return parts.join('; ');
}

export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export async function permissionsCommand(ctx: CliContext, options: PermissionsCommandOptions): Promise<number> {
  const o = { ...options, tenant: tenantOf(options) };
  return withTenant(ctx, o, o.tenant, async (snapshot, description) => {
    if (!snapshot) throw new CliError(`tenant ${o.tenant} does not exist in the ${description}`);
    const index = new TenantIndex(snapshot.state, snapshot.revision);
    const rows = index.permissions(o.user);
    const user = index.findUser(o.user);
    if (rows === undefined || !user) throw new CliError(`no user ${o.user} in tenant ${o.tenant} (give a User name or email)`);
    ctx.logger.debug({ tenant: o.tenant, user: user.name, rows: rows.length, revision: snapshot.revision }, 'permissions');

    if (o.output === 'json') {
      printJson(ctx, { permissions: rows });
      return EXIT_OK;
    }
    const who = `${user.spec.fullName ? `${user.spec.fullName} ` : ''}(User ${o.tenant}/${user.name}, ${user.spec.email}${user.spec.type === 'Robot' ? ', Robot' : ''})`;
    if (!user.spec.active) {
      ctx.out(`${who} is inactive: denied everything`);
      return EXIT_OK;
    }
    if (rows.length === 0) {
      ctx.out(`${who} holds no permission: no binding grants them anything`);
      return EXIT_OK;
    }
    const sorted = [...rows].sort(
      (a, b) =>
        Number(a.folder !== null) - Number(b.folder !== null) ||
        (a.folder ?? '').localeCompare(b.folder ?? '') ||
        catalogOrder.get(a.permission)! - catalogOrder.get(b.permission)! ||
        a.via.localeCompare(b.via) ||
        a.role.localeCompare(b.role),
    );
    // First the grants (the seed's "inherited and explicit roles"), then every permission they give.
    const grants = new Map<string, string[]>();
    for (const r of sorted) {
      const k = `${r.role}\u0000${r.folder ?? ''}\u0000${r.binding ?? ''}\u0000${r.via}`;
      if (!grants.has(k)) grants.set(k, [r.role, r.folder ?? '(tenant-wide)', r.binding ?? '(implicit: Robot user)', r.via, limitsColumn(r)]);
    }
    const grantRows = [...grants.values()].sort((a, b) => Number(a[3] !== 'user') - Number(b[3] !== 'user') || a[3]!.localeCompare(b[3]!) || a[0]!.localeCompare(b[0]!) || a[1]!.localeCompare(b[1]!));
    const hasLimits = rows.some((r) => limitsColumn(r) !== '');
    const limits = (cells: string[]) => (hasLimits ? cells : cells.slice(0, -1));
    ctx.out(`${who} in tenant ${o.tenant}`);
    ctx.out();
    for (const line of formatTable(limits(['ROLE', 'WHERE', 'BINDING', 'VIA', 'LIMITED TO']), grantRows.map(limits))) ctx.out(line);
    const distinct = new Set(rows.map((r) => `${r.permission}@${r.folder ?? ''}`)).size;
    ctx.out();
    ctx.out(`${distinct} permission${distinct === 1 ? '' : 's'} (a folder's permissions hold in its subfolders too):`);
    const table = sorted.map((r) => limits([r.permission, folderColumn(r), r.role, r.binding ?? '(implicit: Robot user)', r.via, limitsColumn(r)]));
    for (const line of formatTable(limits(['PERMISSION', 'FOLDER', 'ROLE', 'BINDING', 'VIA', 'LIMITED TO']), table)) ctx.out(line);
    return EXIT_OK;
  });
}
