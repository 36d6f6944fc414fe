/**
 * The commands, their options and help. Each command's implementation is imported only when it
 * runs (typed: the import paths are static): `validate` never loads the database drivers, `check`
 * never loads the schema compiler, `--help` loads neither, and only `operator` loads the
 * Kubernetes client (start-up time matters for a command line). `operator` and `serve` take their
 * option types and defaults from src/operator/options.ts and src/server/options.ts.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { ApplyCommandOptions } from './apply.js';
import type { CheckCommandOptions } from './check.js';
import type { CliContext } from './context.js';
import type { DiffCommandOptions } from './diff.js';
import type { DocumentOptions } from './documents.js';
import type { LoginCommandOptions, UsersCommandOptions } from './directory.js';
import type { GhostsCommandOptions } from './ghosts.js';
import type { PermissionsCommandOptions } from './permissions.js';
import type { ImportCommandOptions, SyncCommandOptions } from './target.js';
import { OPERATOR_DEFAULTS, type OperatorCommandOptions } from '../operator/options.js';
import { AUTH_MODES, SERVE_DEFAULTS, type ServeCommandOptions } from '../server/options.js';
import type { WhoCommandOptions } from './who.js';

/**
 * A Command whose required options are checked just before the action, not by commander's own
 * check: commander reports a missing required option before an unknown one, so a typo such as
 * `--permision` would read as "--permission not specified" rather than "unknown option
 * '--permision' (Did you mean --permission?)".
 */
export class RpaCommand extends Command {
  private readonly required = new Set<Option>();

  override createCommand(name?: string): RpaCommand {
    return new RpaCommand(name);
  }

  override requiredOption(flags: string, description?: string, ...rest: unknown[]): this {
    const option = new Option(flags, `${description ?? ''} (required)`);
    if (rest[0] !== undefined) option.default(rest[0]);
    this.required.add(option);
    return this.addOption(option);
  }

  /** Called from the program's preAction hook. */
  checkRequired(): void {
    for (const o of this.required) {
      if (this.getOptionValue(o.attributeName()) === undefined) {
        this.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: 1 });
      }
    }
  }
}

export type Runner = (command: Command, fn: (ctx: CliContext) => Promise<number>) => Promise<void>;

const output = () => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');

/** Which tenant a read command asks about: `--tenant T`, or `-n T` as kubectl users type it. */
function addTenantOptions(command: Command): Command {
  return command
    .option('--tenant <tenant>', 'the tenant (namespace) (required, or -n)')
    .option('-n, --namespace <tenant>', 'the same as --tenant');
}

/** Where a read command gets the tenant: the store, or the cluster (the kubectl plugin's default). */
function addSourceOptions(command: Command): Command {
  return addClusterOptions(
    command
      .option('--from-cluster', 'read the tenant from the cluster of the current kubeconfig context instead of the store (default when run as kubectl rpa-access)')
      .option('--no-from-cluster', 'read the store even when run as the kubectl plugin'),
  );
}

function addClusterOptions(command: Command): Command {
  return command
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current one)');
}

/** What is asked, apart from who: shared by check and who. */
function addQuestionOptions(command: Command): Command {
  return command
    .requiredOption('--permission <Resource.Action>', 'e.g. Jobs.Create, Deployments.Create, Users.View')
    .option('--folder <path>', 'folder path, e.g. Finance/Invoices (required for folder permissions)')
    .option('--resource <Kind/name>', 'the object acted on, e.g. Process/invoice-bot or Robot/hr-01')
    .option('--environment <name>', 'the environment acted in, e.g. staging');
}

function addDocumentOptions(command: Command): Command {
  return command
    .requiredOption('-f, --filename <path...>', 'files or directories of YAML/JSON documents (directories are read recursively; - reads standard input)')
    .option('-n, --namespace <tenant>', 'tenant of documents that name no metadata.namespace');
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('expected a port number, 0 to 65535.');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('expected a whole number, 1 or more.');
  return n;
}

/** A duration such as `15s`, `500ms`, `1m`, or a bare number of seconds; returns milliseconds. */
function duration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000) : NaN;
  if (!(ms >= 1)) throw new InvalidArgumentError('expected a duration such as 15s, 500ms or 1m.');
  return ms;
}

export function registerCommands(program: Command, run: Runner): void {
  program.hook('preAction', (_program, action) => {
    if (action instanceof RpaCommand) action.checkRequired();
  });

  addDocumentOptions(
    program
      .command('validate')
      .summary('check documents offline: schema and invariants')
      .description(
        'Check rpa-access documents offline, without a store: each document against its schema, duplicate objects across the documents, ' +
          'and the cross-object rules (one owner per tenant, role scopes, unique emails, built-ins untouched). ' +
          'Prints one line per problem, PATH:LINE: Kind namespace/name: message, on stderr. Exit 0 valid, 1 invalid.',
      ),
  )
    .addHelpText('after', '\nExamples:\n  rpa-access validate -f examples/\n  rpa-access validate -f users.yaml -f bindings.yaml\n  cat tenant.yaml | rpa-access validate -f -')
    .action(async (options: DocumentOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./validate.js')).validateCommand(ctx, options)),
    );

  addDocumentOptions(
    program
      .command('apply')
      .summary('reconcile documents into the store')
      .description(
        'Reconcile the documents into the access store as the desired state of the tenants they name, in one all-or-nothing transaction, ' +
          'and print the plan (created / updated / deleted / unchanged). The documents are validated first; any problem or violation: exit 1, nothing written.',
      ),
  )
    .option('--dry-run', 'plan and check against the store, write nothing')
    .option('--prune', 'also delete what the named tenants hold that the documents no longer contain (never the built-ins nor what the store created itself)')
    .option('--prune-allow-mass-delete', 'let --prune delete more than half of a tenant\'s declared objects, or more than 100 (refused otherwise)')
    .addOption(output())
    .addHelpText(
      'after',
      '\nExamples:\n  rpa-access apply -f examples/\n  rpa-access apply -f examples/finance --dry-run\n  rpa-access apply -f tenants/finance --prune --output json\n  rpa-access --store postgres://rpa@db/rpa apply -f examples/',
    )
    .action(async (options: ApplyCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./apply.js')).applyCommand(ctx, options)),
    );

  addSourceOptions(
    addQuestionOptions(
      addTenantOptions(
        program
          .command('check')
          .summary('may this user do this here? and why')
          .description(
            'Decide one question against the access store (or the cluster, with --from-cluster) and explain it: which role, through which binding, explicit (via user) or inherited (via group:NAME). ' +
              'Exit 0 allowed, 3 denied, 1 error. A folder permission needs --folder; a tenant permission takes none.',
          ),
      ).requiredOption('--user <user>', 'a User name or email'),
    ),
  )
    .option('--directory-group <id...>', "answer with these directory group ids (an identity token's groups claim) instead of the user's login session")
    .addOption(output())
    .addHelpText(
      'after',
      '\nExamples:\n  rpa-access check --tenant finance --user john.smith@example.com --permission Jobs.Create --folder Finance/Payments\n' +
        '  rpa-access check --tenant finance --user thorsten-weber --permission Jobs.Create --folder Finance/Invoices --resource Process/invoice-bot\n' +
        '  rpa-access check --tenant platform --user dev-anna --permission Deployments.Create --folder Shared --environment production --output json\n' +
        '  kubectl rpa-access check -n finance --user john-smith --permission Jobs.Create --folder Finance/Payments',
    )
    .action(async (options: CheckCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./check.js')).checkCommand(ctx, options)),
    );

  addSourceOptions(
    addQuestionOptions(
      addTenantOptions(
        program
          .command('who')
          .summary('who may do this here? and why')
          .description(
            'List every user of a tenant allowed to do something, each with what allows them (role, binding, via user or group:NAME): ' +
              'the question of check, without --user. An unknown tenant is an error (exit 1); nobody allowed is an empty list (exit 0).',
          ),
      ),
    ),
  )
    .addOption(output())
    .addHelpText(
      'after',
      '\nExamples:\n  rpa-access who --tenant finance --permission Jobs.Create --folder Finance/Payments\n' +
        '  rpa-access who --tenant hr --permission Users.Edit --output json\n' +
        '  kubectl rpa-access who -n finance --permission Jobs.Create --folder Finance/Payments',
    )
    .action(async (options: WhoCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./who.js')).whoCommand(ctx, options)),
    );

  addSourceOptions(
    addTenantOptions(
      program
        .command('permissions')
        .summary("a user's effective permissions, with provenance")
        .description(
          'List everything a user may do in a tenant, inherited (via group:NAME, global included) and explicit (via user): ' +
            'each permission with its folder (subfolders included), role, binding and narrowing (objects, environment, expiry). ' +
            'An unknown tenant or user is an error (exit 1).',
        ),
    ).requiredOption('--user <user>', 'a User name or email'),
  )
    .addOption(output())
    .addHelpText(
      'after',
      '\nExamples:\n  rpa-access permissions --tenant finance --user john.smith@example.com\n  rpa-access permissions --tenant hr --user john-smith --output json\n' +
        '  kubectl rpa-access permissions -n finance --user john-smith',
    )
    .action(async (options: PermissionsCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./permissions.js')).permissionsCommand(ctx, options)),
    );

  addClusterOptions(
    program
      .command('diff')
      .summary('who gains and who loses what, if these documents were applied')
      .description(
        'Compare the effective access the documents would give with what the store (default), the cluster (--against-cluster) or other documents (--against-files) give today: ' +
          'per tenant and user, the permissions gained and lost with their folder and provenance, then the object-level plan. ' +
          'Markdown output is made for a pull-request comment. Exit 0 no change, 2 changes, 1 invalid documents or error.',
      )
      .requiredOption('-f, --filename <path...>', 'files or directories of YAML/JSON documents: the proposed state (- reads standard input)')
      .option('--namespace <tenant>', 'tenant of documents that name no metadata.namespace')
      .option('--against <store>', 'compare with this store (postgres://... or an embedded store path; default: --store, $RPA_ACCESS_STORE, ./.rpa-access/)')
      .option('--against-cluster', 'compare with the custom resources in the cluster of the current kubeconfig context (default when run as kubectl rpa-access)')
      .option('--against-files <path...>', 'compare with other documents, e.g. the base branch of a pull request (tenants they do not name start empty)')
      .option('--prune', 'the documents are the whole desired state of their tenants: what they no longer contain is deleted (as apply --prune; implied by --against-files)'),
  )
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'markdown']).default('text'))
    .addHelpText(
      'after',
      '\nExamples:\n  rpa-access diff -f examples/\n  rpa-access diff -f tenants/ --against postgres://rpa@db/rpa --prune --output markdown\n' +
        '  rpa-access diff -f tenants/ --against-files base/tenants/ --output markdown > comment.md\n  kubectl rpa-access diff -f tenants/finance/',
    )
    .action(async (options: DiffCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./diff.js')).diffCommand(ctx, options)),
    );

  program
    .command('sync')
    .summary('push a tenant into a UiPath Orchestrator tenant')
    .description(
      'Push a tenant of the store into the UiPath Orchestrator tenant an Orchestrator document describes, and print the plan of UiPath changes ' +
        '(created / updated / deleted / unchanged, not representable, conflicts). Writes nothing with --dry-run or managementPolicy: Observe. ' +
        'Credentials: $RPA_ACCESS_TARGET_CLIENT_ID and $RPA_ACCESS_TARGET_CLIENT_SECRET (an external application, client credentials). ' +
        'Exit 0 done or nothing to do, 2 conflicts left (or, with --exit-code, changes pending after a dry run or an Observe run), 1 error.',
    )
    .requiredOption('--tenant <tenant>', 'the tenant (namespace) to push')
    .requiredOption('--target <file>', 'a YAML file holding the Orchestrator document')
    .option('--dry-run', 'read UiPath and plan; write nothing')
    .option('--exit-code', 'exit 2 when a dry run or an Observe run finds changes pending')
    .addOption(output())
    .addHelpText('after', '\nExamples:\n  rpa-access sync --tenant finance --target uipath.yaml --dry-run\n  rpa-access sync --tenant finance --target uipath.yaml --output json')
    .action(async (options: SyncCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./target.js')).syncCommand(ctx, options)),
    );

  program
    .command('import')
    .summary('read a UiPath Orchestrator tenant into documents')
    .description(
      'Read the UiPath Orchestrator tenant an Orchestrator document describes and write rpa-access documents (users, groups, custom roles, ' +
        'bindings with folders) that, applied, reproduce its access; what cannot be written is reported on stderr. The objects imported are ' +
        'recorded as managed by the target, so that `apply` then `sync --dry-run` shows nothing to change. Credentials as for sync.',
    )
    .requiredOption('--tenant <tenant>', 'the tenant (namespace) the documents are for')
    .requiredOption('--target <file>', 'a YAML file holding the Orchestrator document')
    .option('-o, --output-dir <dir>', 'write <tenant>.yaml (and orchestrator.yaml when a roleMap is needed) there instead of standard output')
    .addHelpText('after', '\nExamples:\n  rpa-access import --target uipath.yaml --tenant finance -o tenants/finance\n  rpa-access import --target uipath.yaml --tenant finance > finance.yaml')
    .action(async (options: ImportCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./target.js')).importCommand(ctx, options)),
    );

  program
    .command('login')
    .summary("record a login: session and auto-provisioning from directory groups")
    .description(
      "Record a login to a tenant as the orchestrator reports it: the user's email and the directory group ids of the identity token. " +
        'The directory Groups of the tenant that match give their rights for the session (--session-ttl, default 1h; a new login replaces it). ' +
        'An email no User has is provisioned as a User when at least one directory group matches. ' +
        'Exit 0 logged in, 3 refused (nobody to provision, inactive user: nothing written), 1 error (bad input, unknown tenant).',
    )
    .requiredOption('--tenant <tenant>', 'the tenant (namespace)')
    .requiredOption('--user <email>', 'the email of the identity token')
    .option('--directory-group <id...>', "directory group ids of the identity token's groups claim")
    .option('--session-ttl <duration>', 'session length, e.g. 90s, 30m, 1h (default: 1h)')
    .addOption(output())
    .addHelpText(
      'after',
      '\nExamples:\n  rpa-access login --tenant sales --user john.smith@example.com --directory-group 8a2c4e6f-1b3d-4f5a-8c7e-9d0b1a2c3e04 c3d5e7f9-2a4b-4c6d-8e0f-1a3b5c7d9e05\n' +
        '  rpa-access login --tenant sales --user jane@example.com --directory-group "CN=Automation Users,OU=Groups,DC=example,DC=com" --session-ttl 90s --output json',
    )
    .action(async (options: LoginCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./directory.js')).loginCommand(ctx, options)),
    );

  program
    .command('users')
    .summary('list the users of a tenant: declared and auto-provisioned, with their sessions')
    .description(
      'List the users of a tenant with their origin (declared in documents, or auto-provisioned by a login), last login, ' +
        'and the directory groups of their current session. An unknown tenant is an error (exit 1).',
    )
    .requiredOption('--tenant <tenant>', 'the tenant (namespace)')
    .addOption(output())
    .addHelpText('after', '\nExamples:\n  rpa-access users --tenant finance\n  rpa-access users --tenant finance --output json')
    .action(async (options: UsersCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./directory.js')).usersCommand(ctx, options)),
    );

  program
    .command('ghosts')
    .summary('what the store holds that the cluster does not show')
    .description(
      'List the objects the access store holds that the cluster of the current kubeconfig does not show (ghosts), by tenant. ' +
        'In a tenant the operator manages, a ghost is about to be removed by its drift pass, or kept because the store refuses to delete it: ' +
        'then it still grants, and the reason says what would unblock it. The operator counts them on /metrics (rpa_access_ghost_objects).',
    )
    .option('--tenant <tenant>', 'only this tenant (namespace)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .addOption(output())
    .addHelpText('after', '\nExamples:\n  rpa-access ghosts\n  rpa-access ghosts --tenant finance --output json')
    .action(async (options: GhostsCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('./ghosts.js')).ghostsCommand(ctx, options)),
    );

  program
    .command('operator')
    .summary('run the operator against the cluster of the current kubeconfig')
    .description(
      'Run the operator: watch the rpa-access custom resources of the cluster of the current kubeconfig (or the in-cluster service account), ' +
        'reconcile them into the access store and report their status, and serve the admission webhook (validation, and the finalizer at create). Runs until SIGTERM or SIGINT.',
    )
    .option('--leader-elect', 'run the workers only while holding the Lease (for several replicas)', OPERATOR_DEFAULTS.leaderElect)
    .option('--lease-namespace <namespace>', 'namespace of the leader-election Lease (default: the pod\'s namespace)')
    .addOption(
      new Option('--lease-duration <duration>', 'how long a standby waits before taking over from a leader that stopped renewing, e.g. 15s (default); the renew deadline and retry period scale with it (2/3 and 2/15 of it, as client-go\'s 15s/10s/2s)').argParser(duration),
    )
    .addOption(new Option('--health-port <port>', '/healthz, /readyz (and /metrics unless --metrics-port) port; 0 picks a free one').argParser(port).default(OPERATOR_DEFAULTS.healthPort))
    .addOption(new Option('--metrics-port <port>', 'a separate port for /metrics').argParser(port))
    .addOption(new Option('--webhook-port <port>', 'admission webhook HTTPS port').argParser(port))
    .option('--webhook-cert-dir <dir>', 'directory of the webhook serving certificate (tls.crt, tls.key)')
    .addOption(new Option('--concurrency <n>', 'objects reconciled in parallel').argParser(positive).default(OPERATOR_DEFAULTS.concurrency))
    .action(async (options: OperatorCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('../operator/main.js')).runOperator(options, ctx)),
    );

  program
    .command('serve')
    .summary('run the decision HTTP API')
    .description(
      'Run the decision HTTP API: POST /v1/check, GET /v1/tenants/{tenant}/users/{user}/permissions, GET /v1/tenants/{tenant}/who, ' +
        '/healthz, /readyz, /metrics, and with --ui a read-only permissions page at /ui/. Callers present a bearer token, verified by a Kubernetes TokenReview or against a token file. Runs until SIGTERM or SIGINT.',
    )
    .addOption(new Option('--port <port>', 'port to listen on').argParser(port).default(SERVE_DEFAULTS.port))
    .addOption(new Option('--host <address>', 'address to listen on').default(SERVE_DEFAULTS.host))
    .addOption(
      new Option('--auth <mode>', 'how callers are authenticated (default: token with --token-file, else tokenreview); none must be asked for explicitly').choices(AUTH_MODES),
    )
    .option('--token-file <path>', 'file of accepted bearer tokens, one per line (with --auth token; reloaded on SIGHUP)')
    .option('--session-ttl <duration>', 'length of the sessions logins open (POST /v1/tenants/{tenant}/sessions), e.g. 90s, 30m, 1h (default: 1h)')
    .option('--ui', 'also serve the read-only permissions page at /ui/ (a user\'s permissions, who can, the access matrix; asks the /v1 API with a token the user enters)')
    .action(async (options: ServeCommandOptions, cmd: Command) =>
      run(cmd, async (ctx) => (await import('../server/main.js')).runServe(options, ctx)),
    );
}
