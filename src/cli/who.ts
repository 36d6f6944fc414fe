/**
 * `rpa-access who --tenant T --permission R.A [--folder PATH] [--resource Kind/name]
 * [--environment E] [--output json]`: everyone allowed, each with what allows them (the decision
 * API's GET /v1/tenants/{tenant}/who, from the command line or kubectl).
 */
import { parseRequest, TenantIndex, type CheckRequest } from '../model/engine.js';
import { describeGrant } from './check.js';
import { CliError, EXIT_OK, printJson, type CliContext, type OutputFormat } from './context.js';
import { tenantOf, withTenant, type TenantOption, type TenantSourceOptions } from './tenant-source.js';

export interface WhoCommandOptions extends Omit<CheckRequest, 'user'>, TenantOption, TenantSourceOptions {
  output: OutputFormat;
}

export async function whoCommand(ctx: CliContext, options: WhoCommandOptions): Promise<number> {
  const tenant = tenantOf(options);
  const question = { permission: options.permission, folder: options.folder, resource: options.resource, environment: options.environment };
  parseRequest(question); // a malformed question is an error whether or not the tenant exists
  return withTenant(ctx, options, tenant, async (snapshot, description) => {
    if (!snapshot) throw new CliError(`tenant ${tenant} does not exist in the ${description}`);
    const index = new TenantIndex(snapshot.state, snapshot.revision);
    const users = index.who(question);
    ctx.logger.debug({ tenant, ...question, users: users.length }, 'who');
    if (options.output === 'json') {
      printJson(ctx, { users });
      return EXIT_OK;
    }
    const where = [question.resource ? `on ${question.resource}` : '', question.folder ? `in ${question.folder}` : `in tenant ${tenant}`, question.environment ? `(environment ${question.environment})` : '']
      .filter(Boolean)
      .join(' ');
    if (users.length === 0) {
      ctx.out(`nobody may ${question.permission} ${where}`);
      return EXIT_OK;
    }
    ctx.out(`${users.length} user${users.length === 1 ? '' : 's'} may ${question.permission} ${where}:`);
    for (const u of users) {
      const email = index.findUser(u.user)?.spec.email;
      ctx.out(`  ${u.user}${email ? ` (${email})` : ''}: ${u.grants.map(describeGrant).join('; ')}`);
    }
    return EXIT_OK;
  });
}
