/**
 * Escalation check, the Kubernetes RBAC way: whoever creates a RoleBinding that grants a guarded
 * role (by default `owner` and `administrator`), or changes the subjects or roleRef of one, must
 * hold the verb `bind` on `roles.rpa-access.io` with that role's name in the namespace. Without
 * it, anyone allowed to edit RoleBindings could make themselves administrator of the tenant.
 *
 * The question is put to the API server as a SubjectAccessReview for the requesting user (name,
 * groups, uid, extra from the AdmissionRequest's userInfo), so every authorizer of the cluster
 * (RBAC, webhook authorizers, system:masters) answers it exactly as it would for `kubectl`.
 */
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ADMINISTRATOR_ROLE, API_GROUP, OWNER_ROLE } from '../model/catalog.js';
import { sameSpec } from '../model/tenant.js';
import { errorMessage, requestOptions } from '../k8s/client.js';
import type { UserInfo } from './admission.js';

/** Roles whose granting needs `bind` by default. */
export const DEFAULT_BIND_CHECK_ROLES: readonly string[] = [OWNER_ROLE, ADMINISTRATOR_ROLE];

export interface BindRequest {
  user: UserInfo;
  namespace: string;
  role: string;
}

export interface BindDecision {
  allowed: boolean;
  /** The authorizer's reason, when it gave one. */
  reason?: string;
}

/** Answers "may this user bind this role here?"; throws when it cannot tell (the webhook then refuses). */
export interface EscalationChecker {
  canBind(request: BindRequest): Promise<BindDecision>;
}

/** Whether granting `role` needs `bind`: `roles` lists role names, `*` meaning every role. */
function guardsRole(role: string, roles: readonly string[]): boolean {
  return roles.includes('*') || roles.includes(role);
}

interface BindingSpecLike {
  roleRef?: { name?: unknown };
  subjects?: unknown;
}

function specOf(obj: unknown): BindingSpecLike | undefined {
  const spec = (obj as { spec?: unknown } | undefined)?.spec;
  return typeof spec === 'object' && spec !== null ? (spec as BindingSpecLike) : undefined;
}

/**
 * The role whose `bind` a RoleBinding request needs, or undefined when none: a CREATE of a
 * binding of a guarded role, or an UPDATE that changes its roleRef or subjects (handing the role
 * to someone else). Other edits (folder, expiry, labels) do not give the role to anyone new.
 */
export function roleToBind(operation: string, object: unknown, oldObject: unknown, roles: readonly string[]): string | undefined {
  if (operation !== 'CREATE' && operation !== 'UPDATE') return undefined;
  const spec = specOf(object);
  const role = spec?.roleRef?.name;
  if (typeof role !== 'string' || !guardsRole(role, roles)) return undefined;
  if (operation === 'UPDATE') {
    const old = specOf(oldObject);
    if (old && old.roleRef?.name === role && sameSpec(old.subjects ?? [], spec?.subjects ?? [])) return undefined;
  }
  return role;
}

export function escalationMessage(namespace: string, name: string, role: string): string {
  return `RoleBinding ${namespace}/${name}: binding role ${role} requires the 'bind' verb on roles.${API_GROUP} ${JSON.stringify(role)} in namespace ${namespace} (escalation check)`;
}

/** The checker of a real cluster: one SubjectAccessReview per question, with a deadline. */
export class SubjectAccessReviewChecker implements EscalationChecker {
  private readonly api: AuthorizationV1Api;
  private readonly timeoutMs: number;

  /** `timeoutMs` must stay under the webhook's own timeoutSeconds (5 s by default). */
  constructor(kc: KubeConfig, opts: { timeoutMs?: number } = {}) {
    this.api = kc.makeApiClient(AuthorizationV1Api);
    this.timeoutMs = opts.timeoutMs ?? 3_000;
  }

  async canBind({ user, namespace, role }: BindRequest): Promise<BindDecision> {
    try {
      const review = await this.api.createSubjectAccessReview(
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: user.username,
              uid: user.uid,
              groups: user.groups,
              extra: user.extra,
              resourceAttributes: { namespace, verb: 'bind', group: API_GROUP, resource: 'roles', name: role },
            },
          },
        },
        requestOptions({ signal: AbortSignal.timeout(this.timeoutMs) }),
      );
      return { allowed: review.status?.allowed === true && review.status?.denied !== true, reason: review.status?.reason || undefined };
    } catch (err) {
      throw new Error(`SubjectAccessReview failed: ${errorMessage(err)}`, { cause: err });
    }
  }
}
