/**
 * The ledger of what Orchestrator targets created in UiPath (migration 0003): claims by target,
 * shared scopes, idempotent records, and one transaction per record call, on both backends.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { AccessStore } from '../../src/store/store.js';
import { storeFactories } from '../support/stores.js';

describe.each(storeFactories)('target objects on $name', (factory) => {
  let store: AccessStore;
  beforeEach(async () => {
    store = await factory.open();
  });
  afterEach(async () => {
    await store.close();
  });

  const role = { scope: 'orchestrator:https://x/acme/finance/orchestrator_', kind: 'Role', externalId: '12', name: 'developer' };
  const user = { scope: 'identity:https://x/identity#org', kind: 'IdentityUser', externalId: 'a-b-c', name: 'john@example.com' };

  it('records, lists by scope with the claiming target, and forgets', async () => {
    await store.recordTargetObjects('finance/uipath', { add: [role, user] });
    await store.recordTargetObjects('finance/uipath', { add: [role] }); // idempotent
    await store.recordTargetObjects('hr/uipath', { add: [user] });
    const claims = await store.loadTargetObjects([user.scope, role.scope]);
    expect(claims.map((c) => `${c.target} ${c.kind} ${c.externalId}`).sort()).toEqual([
      'finance/uipath IdentityUser a-b-c', 'finance/uipath Role 12', 'hr/uipath IdentityUser a-b-c',
    ]);
    expect(await store.loadTargetObjects(['orchestrator:elsewhere'])).toEqual([]);
    await store.recordTargetObjects('finance/uipath', { remove: [user] });
    expect((await store.loadTargetObjects([user.scope])).map((c) => c.target)).toEqual(['hr/uipath']);
  });

  it('survives a reopen of the store', async () => {
    const url = factory.newUrl();
    const a = await factory.open(url);
    await a.recordTargetObjects('finance/uipath', { add: [role] });
    await a.close();
    const b = await factory.open(url);
    expect(await b.loadTargetObjects([role.scope])).toEqual([{ ...role, target: 'finance/uipath' }]);
    await b.close();
  });
});
