/**
 * `rpa-access login` and `rpa-access users` (contract section 7): a login recorded in the store
 * (session, auto-provisioning, audit), and the tenant's users with their origin and session.
 * The rules are the model's (src/model/directory.ts); this is input and output only.
 */
import { DEFAULT_SESSION_TTL_MS, parseLogin, parseSessionTtl, userSummary } from '../model/directory.js';
import { TenantIndex } from '../model/engine.js';
import { actorName, CliError, EXIT_DENIED, EXIT_OK, printJson, withStore, type CliContext, type OutputFormat } from './context.js';
import { formatTable } from './permissions.js';

export interface LoginCommandOptions {
  tenant: string;
  user: string;
  directoryGroup?: string[];
  sessionTtl?: string;
  output: OutputFormat;
}

export interface UsersCommandOptions {
  tenant: string;
  output: OutputFormat;
}

export async function loginCommand(ctx: CliContext, o: LoginCommandOptions): Promise<number> {
  // Bad input is an error (exit 1) before the store is opened: nothing can be written.
  const login = parseLogin({ user: o.user, directoryGroups: o.directoryGroup ?? [] });
  const ttlMs = o.sessionTtl === undefined ? DEFAULT_SESSION_TTL_MS : parseSessionTtl(o.sessionTtl);
  return withStore(ctx, {}, async (store) => {
    const result = await store!.login(o.tenant, login, { ttlMs, actor: actorName(ctx.io.env), source: 'cli' });
    if (result.refused !== undefined) {
      if (result.unknownTenant) throw new CliError(`login refused: ${result.refused}`);
      ctx.logger.debug({ tenant: o.tenant, refused: result.refused }, 'login refused');
      if (o.output === 'json') printJson(ctx, { refused: result.refused });
      else ctx.err(`refused: ${result.refused}`);
      return EXIT_DENIED;
    }
    const groups = result.session.groups.map((g) => g.name);
    if (o.output === 'json') {
      printJson(ctx, { user: result.user.name, provisioned: result.provisioned, groups, expiresAt: result.session.expiresAt });
    } else {
      const how = result.provisioned ? 'provisioned and logged in' : 'logged in';
      const through = groups.length > 0 ? `directory groups ${groups.join(', ')} until ${result.session.expiresAt}` : 'no directory group';
      ctx.out(`${result.user.name} (${result.user.spec.email}) ${how} to tenant ${o.tenant}: ${through}`);
    }
    return EXIT_OK;
  });
}

export async function usersCommand(ctx: CliContext, o: UsersCommandOptions): Promise<number> {
  return withStore(ctx, { readOnly: true }, async (store, description) => {
    const snapshot = store ? await store.loadTenant(o.tenant) : undefined;
    if (!snapshot) throw new CliError(`tenant ${o.tenant} does not exist in the store ${description}`);
    const index = new TenantIndex(snapshot.state, snapshot.revision);
    const now = Date.now();
    const users = index.users().map((u) => userSummary(u, index.sessionOf(u.name), now));
    if (o.output === 'json') {
      printJson(ctx, { users });
      return EXIT_OK;
    }
    const rows = users.map((u) => [
      u.name, u.email, u.type, u.origin, u.active ? 'yes' : 'no', u.lastLogin ?? '-',
      u.sessionExpiresAt ? `${u.sessionGroups.join(', ') || '(none)'} until ${u.sessionExpiresAt}` : '-',
    ]);
    for (const line of formatTable(['NAME', 'EMAIL', 'TYPE', 'ORIGIN', 'ACTIVE', 'LAST LOGIN', 'SESSION'], rows)) ctx.out(line);
    return EXIT_OK;
  });
}
