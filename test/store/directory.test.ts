/**
 * Directory groups, logins and auto-provisioning in the store (contract section 7), on both
 * backends: a login is one transaction (session, provisioned User, audit rows, revision), the
 * change feed carries it to a decision index by delta, and provisioned users survive --prune.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { TenantIndex } from '../../src/model/engine.js';
import type { AnyEntry } from '../../src/model/types.js';
import type { AccessStore } from '../../src/store/store.js';
import { storeFactories } from '../support/stores.js';

const T = 'acme';
const dirGroup = (name: string, id: string): AnyEntry => ({ kind: 'Group', name, origin: 'user', spec: { directory: { provider: 'azure-ad', id } } });
const folderRole: AnyEntry = { kind: 'Role', name: 'runner', origin: 'user', spec: { scope: 'Folder', permissions: [{ resource: 'Jobs', actions: ['Create'] }] } };
const bind = (name: string, subject: { kind: 'User' | 'Group'; name: string }, role: string, folder?: string): AnyEntry => ({
  kind: 'RoleBinding', name, origin: 'user', spec: { roleRef: { name: role }, subjects: [subject], ...(folder ? { folder } : {}) },
});

const seed: AnyEntry[] = [
  dirGroup('administrators', 'GUID-ADMINS'),
  dirGroup('automation-users', 'guid-users'),
  folderRole,
  bind('admins', { kind: 'Group', name: 'administrators' }, 'administrator'),
  bind('users-run', { kind: 'Group', name: 'automation-users' }, 'runner', 'Finance'),
];

describe.each(storeFactories)('directory logins on $name', (factory) => {
  let store: AccessStore | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('provisions, audits, feeds the index by delta, survives --prune, and is adopted by a User document', async () => {
    store = await factory.open();
    await store.apply([{ tenant: T, upserts: seed }]);
    const before = await store.loadTenant(T);
    const index = new TenantIndex(before!.state, before!.revision);

    const now = Date.now();
    const result = await store.login(T, { email: 'John.Smith@Example.com', directoryGroups: ['guid-admins', 'GUID-USERS', 'unknown'] }, { now, ttlMs: 60_000, actor: 'test' });
    expect(result.refused).toBeUndefined();
    if (result.refused !== undefined) return;
    expect(result.provisioned).toBe(true);
    expect(result.user).toMatchObject({ name: 'john.smith-at-example.com', origin: 'directory', spec: { email: 'John.Smith@Example.com', type: 'Human', active: true } });
    expect(result.session.groups.map((g) => g.name)).toEqual(['administrators', 'automation-users']);

    const audit = (await store.audit({ tenant: T })).filter((a) => a.message);
    expect(audit.map((a) => a.message)).toEqual([
      'User john.smith-at-example.com was automatically provisioned from the following groups: administrators, automation-users',
      'User john.smith-at-example.com was assigned to the following groups: administrators, automation-users',
    ]);

    // The change feed's incremental read carries the provisioned user and the session.
    const delta = await store.loadTenantChanges!(T, index.revision);
    expect(delta?.sessions?.map((s) => s.email)).toEqual(['john.smith@example.com']);
    const next = index.withChanges(delta!, delta!.revision);
    const check = (ix: TenantIndex, at: number) => ix.check({ user: 'john.smith@example.com', permission: 'Jobs.Create', folder: 'Finance/Invoices' }, at);
    expect(check(next, now + 1000).grants.map((g) => g.via)).toEqual(['directory:administrators', 'directory:automation-users']);
    expect(check(next, now + 1000).grants[0]!.sessionExpiresAt).toBe(new Date(now + 60_000).toISOString());
    expect(check(next, now + 61_000)).toMatchObject({ allowed: false, reason: 'NoGrant' });
    // A whole read agrees with the delta.
    const whole = await store.loadTenant(T);
    expect(check(new TenantIndex(whole!.state, whole!.revision), now + 1000).allowed).toBe(true);

    // --prune with documents that do not name him: he stays.
    const pruned = await store.apply([{ tenant: T, upserts: seed, prune: true }]);
    expect(pruned.violations).toEqual([]);
    expect((await store.loadTenant(T))!.state.users.has('john.smith-at-example.com')).toBe(true);

    // A second login replaces the session and does not provision again.
    const again = await store.login(T, { email: 'john.smith@example.com', directoryGroups: ['guid-users'] }, { now: now + 2000 });
    expect(again).toMatchObject({ provisioned: false, session: { groups: [{ name: 'automation-users' }], provisionedFrom: ['administrators', 'automation-users'] } });

    // A User document with his email adopts him (under another name: the provisioned entry goes).
    const adopted = await store.apply([{ tenant: T, upserts: [{ kind: 'User', name: 'john', origin: 'user', spec: { email: 'john.smith@example.com', type: 'Human', active: true, language: 'en', concurrentExecution: true } }] }]);
    expect(adopted.violations).toEqual([]);
    const state = (await store.loadTenant(T))!.state;
    expect(state.users.has('john.smith-at-example.com')).toBe(false);
    expect(state.users.get('john')?.origin).toBe('user');
    const ix = new TenantIndex(state, 0);
    expect(ix.check({ user: 'john', permission: 'Jobs.Create', folder: 'Finance' }, now + 3000).grants.map((g) => g.via)).toEqual(['directory:automation-users']);
  });

  it('refuses, writing nothing: unknown tenant, nobody to provision, an inactive user', async () => {
    store = await factory.open();
    expect(await store.login('nope', { email: 'a@example.com', directoryGroups: ['guid-users'] })).toMatchObject({ unknownTenant: true });
    expect(await store.revisions()).toEqual(new Map());
    await store.apply([{ tenant: T, upserts: [...seed, { kind: 'User', name: 'ann', origin: 'user', spec: { email: 'ann@example.com', type: 'Human', active: false, language: 'en', concurrentExecution: true } }] }]);
    const revision = (await store.revisions()).get(T);
    expect((await store.login(T, { email: 'bob@example.com', directoryGroups: ['other'] })).refused).toMatch(/nobody to provision/);
    expect((await store.login(T, { email: 'ann@example.com', directoryGroups: ['guid-users'] })).refused).toMatch(/inactive/);
    expect((await store.revisions()).get(T)).toBe(revision);
    expect((await store.loadTenant(T))!.state.users.size).toBe(1);
  });

  it('refuses a User listing a directory group, and two Groups of one directory id', async () => {
    store = await factory.open();
    const listing = await store.apply([{ tenant: T, upserts: [...seed, { kind: 'User', name: 'ann', origin: 'user', spec: { email: 'ann@example.com', type: 'Human', active: true, language: 'en', concurrentExecution: true, groups: ['administrators'] } }] }]);
    expect(listing.violations.map((v) => v.rule)).toEqual(['DirectoryGroupMembership']);
    expect(listing.violations[0]!.message).toMatch(/directory group/);
    const twice = await store.apply([{ tenant: T, upserts: [...seed, dirGroup('admins-again', 'guid-admins')] }]);
    expect(twice.violations.map((v) => v.rule)).toEqual(['UniqueDirectoryGroup']);
    expect(await store.revisions()).toEqual(new Map());
  });
});
