/**
 * Directory groups, logins and auto-provisioning (contract section 7): the rules, pure. The store
 * runs `planLogin` inside its write transaction and writes what it says; the HTTP API and the CLI
 * validate their input with `parseLogin` / `parseDirectoryGroups` and restate nothing.
 */
import { RequestError } from './request-error.js';
import { expiryMs } from './time.js';
import { DIRECTORY_ID_PATTERN, MAX_DIRECTORY_ID_LENGTH, NAME_PATTERN } from './schemas.js';
import type { Entry, Session, TenantState } from './types.js';

/** Default session length: the orchestrator re-reads group membership hourly. */
export const DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000;
/** Longest session a caller may ask for (a day): a session is not a substitute for a User document. */
const MAX_SESSION_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * Most directory group ids one login (or one question) may present. Identity providers cap the
 * groups claim far lower (Azure AD: 200 in a JWT, then an overage claim); ten thousand is an error.
 */
export const MAX_DIRECTORY_GROUPS = 1000;
const MAX_EMAIL_LENGTH = 254;

const DIRECTORY_ID = new RegExp(DIRECTORY_ID_PATTERN, 'u');
const NAME = new RegExp(NAME_PATTERN);
/** The shape the User schema accepts (ajv-formats' `email`), checked here without ajv. */
const EMAIL = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;

export interface LoginRequest {
  /** The email of the identity token. */
  email: string;
  /** The directory group ids of the identity token's groups claim. */
  directoryGroups: string[];
}

/** Control characters shown escaped, so that an error line stays one line. */
function quote(value: string, max = 64): string {
  const shown = value.length > max ? `${value.slice(0, max)}...` : value;
  return JSON.stringify(shown).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Directory group ids as presented by a login or a question; duplicates count once. */
export function parseDirectoryGroups(ids: unknown): string[] {
  if (ids === undefined) return [];
  if (!Array.isArray(ids)) throw new RequestError('directoryGroups must be a list of directory group ids');
  if (ids.length > MAX_DIRECTORY_GROUPS) {
    throw new RequestError(`too many directory groups: ${ids.length} (at most ${MAX_DIRECTORY_GROUPS} in one login or question)`);
  }
  const out = new Set<string>();
  for (const id of ids) {
    if (typeof id !== 'string' || id.length === 0) throw new RequestError('a directory group id must be a non-empty string');
    if (id.length > MAX_DIRECTORY_ID_LENGTH) {
      throw new RequestError(`directory group id ${quote(id)} is ${id.length} characters long (at most ${MAX_DIRECTORY_ID_LENGTH})`);
    }
    if (!DIRECTORY_ID.test(id)) throw new RequestError(`directory group id ${quote(id)} holds control characters`);
    out.add(id);
  }
  return [...out];
}

function parseEmail(email: unknown): string {
  if (typeof email !== 'string' || email.length === 0) throw new RequestError('user must be the email of the identity token');
  if (email.length > MAX_EMAIL_LENGTH || !EMAIL.test(email)) throw new RequestError(`user ${quote(email)} is not an email address`);
  return email;
}

/** A login as the API and the CLI receive it: validated, or a RequestError (400 / exit 1). */
export function parseLogin(input: { user?: unknown; directoryGroups?: unknown }): LoginRequest {
  return { email: parseEmail(input.user), directoryGroups: parseDirectoryGroups(input.directoryGroups) };
}

/** `90s`, `1h`, `30m`, `500ms`, `1h30m` or a number of seconds, as milliseconds, within the bounds. */
export function parseSessionTtl(value: string): number {
  const text = value.trim();
  let ms = 0;
  let rest = text;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const part = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
    for (let m = part.exec(rest); m; m = part.exec(rest)) {
      ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
      rest = rest.slice(m[0].length);
    }
    if (rest !== '' || text === '') ms = Number.NaN;
  }
  if (!(ms >= 1000) || ms > MAX_SESSION_TTL_MS) {
    throw new RequestError(`invalid session TTL ${quote(value)}: a duration from 1s to 24h, e.g. 90s, 30m, 1h`);
  }
  return Math.round(ms);
}

/** The directory Groups of a tenant by id in lower case (ids are unique per tenant, case-insensitively). */
export function directoryGroupsById(groups: Iterable<Entry<'Group'>>): Map<string, Entry<'Group'>> {
  const out = new Map<string, Entry<'Group'>>();
  for (const g of groups) if (g.spec.directory) out.set(g.spec.directory.id.toLowerCase(), g);
  return out;
}

/** Is `session` valid at `now`? Expiry is a time, checked at decision time (as a binding's expiresAt). */
function sessionActive(session: Session, now: number): boolean {
  return now <= expiryMs(session.expiresAt);
}

/**
 * The name of a User auto-provisioned for `email`: the email made a Kubernetes object name
 * (`John.Smith@Example.com` -> `john.smith-at-example.com`), suffixed when taken.
 */
export function provisionedUserName(email: string, taken: (name: string) => boolean): string {
  const base =
    email
      .toLowerCase()
      .replace('@', '-at-')
      .replace(/[^a-z0-9.-]+/g, '-')
      .replace(/([.-])[.-]+/g, '$1')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
      .slice(0, 240)
      .replace(/[^a-z0-9]+$/, '') || 'user';
  for (let i = 1; ; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    if (NAME.test(name) && !taken(name)) return name;
  }
}

export type LoginPlan =
  | { refused: string }
  | {
      refused?: undefined;
      /** The User who logged in: existing, or created now (then `provisioned`). */
      user: Entry<'User'>;
      provisioned: boolean;
      session: Session;
      /** Audit messages, worded as the orchestrator's audit log. */
      messages: string[];
    };

/**
 * What a login needs to know of a tenant, answered without reading the whole tenant (a store of
 * 100k users answers each from an index: see the store's `loginView`).
 */
export interface LoginView {
  tenant: string;
  /** The User with this email (case-insensitive). */
  userByEmail(email: string): Entry<'User'> | undefined;
  /** Is there a User of this name? */
  userExists(name: string): boolean;
  /** The tenant's directory Groups by id in lower case. */
  directoryGroups: ReadonlyMap<string, Entry<'Group'>>;
  /** The person's current session, by email in lower case. */
  session(email: string): Session | undefined;
}

/**
 * What a login does to a tenant: who it is, which directory groups matched, the session, and
 * whether a User is provisioned. Refused (nothing written): an inactive user; an email no User
 * has, presenting no directory group of the tenant.
 */
export function planLogin(view: LoginView, login: LoginRequest, now: number, ttlMs: number = DEFAULT_SESSION_TTL_MS): LoginPlan {
  const email = login.email.toLowerCase();
  const matched = new Map<string, { name: string; id: string }>();
  for (const id of login.directoryGroups) {
    const g = view.directoryGroups.get(id.toLowerCase());
    if (g && !matched.has(g.name)) matched.set(g.name, { name: g.name, id: g.spec.directory!.id });
  }
  const groups = [...matched.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const names = groups.map((g) => g.name);
  let user = view.userByEmail(email);
  let provisioned = false;
  if (user && !user.spec.active) return { refused: `user ${user.name} is inactive` };
  if (!user) {
    if (groups.length === 0) {
      const n = login.directoryGroups.length;
      return {
        refused: `no User has the email ${login.email}, and ${n === 0 ? 'no directory group was presented' : `none of the ${n} directory group${n === 1 ? '' : 's'} presented is a directory Group of tenant ${view.tenant}`}: nobody to provision`,
      };
    }
    const name = provisionedUserName(email, view.userExists);
    user = {
      kind: 'User', name, origin: 'directory',
      // Type Human, active, no notification settings: they are not inherited from groups.
      spec: { email: login.email, type: 'Human', active: true, language: 'en', concurrentExecution: true },
    };
    provisioned = true;
  }
  const previous = view.session(email);
  const provisionedFrom = provisioned ? names : user.origin === 'directory' ? previous?.provisionedFrom : undefined;
  const session: Session = {
    email, user: user.name, groups,
    startedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ttlMs).toISOString(),
    ...(provisionedFrom ? { provisionedFrom } : {}),
  };
  const list = names.length > 0 ? names.join(', ') : '(none)';
  const messages = [
    ...(provisioned ? [`User ${user.name} was automatically provisioned from the following groups: ${list}`] : []),
    `User ${user.name} was assigned to the following groups: ${list}`,
  ];
  return { user, provisioned, session, messages };
}

/** How many active sessions and auto-provisioned users refer to a directory Group (its status). */
export function directoryGroupUsage(state: TenantState, group: string, now: number): { activeSessions: number; provisionedUsers: number } {
  let activeSessions = 0;
  let provisionedUsers = 0;
  for (const s of state.sessions?.values() ?? []) {
    if (s.groups.some((g) => g.name === group) && sessionActive(s, now)) activeSessions++;
    const u = state.users.get(s.user);
    if (u?.origin === 'directory' && s.provisionedFrom?.includes(group)) provisionedUsers++;
  }
  return { activeSessions, provisionedUsers };
}

/** `origin` of a user as the API and the CLI show it. */
export type UserOrigin = 'declared' | 'auto-provisioned';

/** A line of `users` (contract section 7). Session fields describe a session valid at `now`. */
export interface UserSummary {
  name: string;
  email: string;
  type: 'Human' | 'Robot';
  origin: UserOrigin;
  active: boolean;
  lastLogin: string | null;
  sessionGroups: string[];
  sessionExpiresAt: string | null;
}

/** A user's profile, as an orchestrator needs it to run jobs and send alerts. */
export interface UserProfile extends UserSummary {
  fullName: string | null;
  language: string;
  slackId: string | null;
  teamsId: string | null;
  notifications: { events: string[]; channels: string[] };
  concurrentExecution: boolean;
  /** Declared groups (spec.groups). */
  groups: string[];
}

export function userSummary(user: Entry<'User'>, session: Session | undefined, now: number): UserSummary {
  const active = session !== undefined && sessionActive(session, now);
  return {
    name: user.name,
    email: user.spec.email,
    type: user.spec.type,
    origin: user.origin === 'directory' ? 'auto-provisioned' : 'declared',
    active: user.spec.active,
    lastLogin: session?.startedAt ?? null,
    sessionGroups: active ? session.groups.map((g) => g.name) : [],
    sessionExpiresAt: active ? session.expiresAt : null,
  };
}

export function userProfile(user: Entry<'User'>, session: Session | undefined, now: number): UserProfile {
  const s = user.spec;
  return {
    ...userSummary(user, session, now),
    fullName: s.fullName ?? null,
    language: s.language ?? 'en',
    slackId: s.slackId ?? null,
    teamsId: s.teamsId ?? null,
    // Channels default to Email when events are set; no events, no notification (auto-provisioned users get none).
    notifications: { events: [...(s.notifications?.events ?? [])], channels: [...(s.notifications?.channels ?? (s.notifications?.events?.length ? ['Email'] : []))] },
    concurrentExecution: s.concurrentExecution ?? true,
    groups: [...(s.groups ?? [])],
  };
}
