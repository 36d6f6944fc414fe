// Near misses (src/model/near-misses.ts): what nearly granted a denied question, one reason each.
import { describe, expect, it } from '@jest/globals';
import { parseRequest, type CheckRequest } from '../../src/model/engine.js';
import { nearMisses } from '../../src/model/near-misses.js';
import { NOW, binding, indexWith, role, user } from '../support/fixtures.js';

const ix = indexWith(
  user('ann'),
  role('starter', 'Folder', ['Jobs.Create']),
  role('auditor', 'Tenant', ['Audit.View']),
  binding('in-finance', 'starter', ['ann'], { folder: 'Finance' }),
  binding('invoice-only', 'starter', ['ann'], { folder: 'HR', resources: [{ kind: 'Process', name: 'invoice-bot' }] }),
  binding('prod-only', 'starter', ['ann'], { folder: 'Ops', environment: 'prod' }),
  binding('old', 'starter', ['ann'], { folder: 'Legal', expiresAt: '2020-01-01T00:00:00Z' }),
  binding('audit-prod', 'auditor', ['ann'], { environment: 'prod' }),
);

const misses = (req: Omit<CheckRequest, 'user'>) => nearMisses(ix, 'ann', parseRequest(req), NOW);

describe('nearMisses', () => {
  it('names a binding that grants only in another folder', () => {
    expect(misses({ permission: 'Jobs.Create', folder: 'Marketing' })).toContainEqual({
      binding: 'in-finance', reason: 'OtherFolder', message: 'binding in-finance grants it only in folder Finance',
    });
  });

  it('names a binding narrowed to other objects', () => {
    expect(misses({ permission: 'Jobs.Create', folder: 'HR', resource: 'Process/payroll-bot' })).toContainEqual({
      binding: 'invoice-only', reason: 'OtherResources', message: 'binding invoice-only grants it only for Process/invoice-bot',
    });
  });

  it('names a binding narrowed to another environment', () => {
    expect(misses({ permission: 'Audit.View', environment: 'staging' })).toEqual([
      { binding: 'audit-prod', reason: 'OtherEnvironment', message: 'binding audit-prod grants it only in environment prod' },
    ]);
  });

  it('names an expired binding that would have granted', () => {
    expect(misses({ permission: 'Jobs.Create', folder: 'Legal' })).toContainEqual({
      binding: 'old', reason: 'Expired', message: 'binding old has expired',
    });
  });

  it('is empty when nothing comes near', () => {
    expect(misses({ permission: 'Users.Delete' })).toEqual([]);
  });

  it('gives at most five, without repeats', () => {
    const all = misses({ permission: 'Jobs.Create', folder: 'Elsewhere' });
    expect(all.length).toBeLessThanOrEqual(5);
    expect(new Set(all.map((m) => m.message)).size).toBe(all.length);
  });
});
