// The status ledger (src/controllers/status-ledger.ts): the operator's own status writes are told
// from anyone else's by value, as the API server stores them (key order and undefined members
// do not count; any other difference does).
import { StatusLedger } from '../../src/controllers/status-ledger.js';

const written = {
  observedGeneration: 2,
  conditions: [{ type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', lastTransitionTime: '2026-12-03T07:00:00Z', observedGeneration: 2 }],
};

describe('StatusLedger', () => {
  test('the status as stored (keys in another order, undefined members gone) is ours', () => {
    const ledger = new StatusLedger();
    ledger.record('User/t/ann', { ...written, appliedGeneration: undefined });
    const stored = JSON.parse(JSON.stringify({ conditions: written.conditions.map((c) => ({ ...c })), observedGeneration: 2 })) as unknown;
    expect(ledger.isOurs('User/t/ann', stored)).toBe(true);
    expect(ledger.isOurs('User/t/ann', { conditions: [{ lastTransitionTime: '2026-12-03T07:00:00Z', observedGeneration: 2, message: 'ok', reason: 'Applied', status: 'True', type: 'Ready' }], observedGeneration: 2 })).toBe(true);
  });

  test('any other status is not ours, nor is any status of an object it never wrote or forgot', () => {
    const ledger = new StatusLedger();
    ledger.record('User/t/ann', written);
    expect(ledger.isOurs('User/t/ann', { ...written, observedGeneration: 3 })).toBe(false);
    expect(ledger.isOurs('User/t/ann', { ...written, appliedGeneration: 2 })).toBe(false);
    expect(ledger.isOurs('User/t/ann', { ...written, conditions: [{ ...written.conditions[0]!, message: 'hand-edited' }] })).toBe(false);
    expect(ledger.isOurs('User/t/bob', written)).toBe(false);
    expect(ledger.size).toBe(1);
    ledger.forget('User/t/ann');
    expect(ledger.isOurs('User/t/ann', written)).toBe(false);
    expect(ledger.size).toBe(0);
  });

  test('no status and an empty one are the same', () => {
    const ledger = new StatusLedger();
    ledger.record('Group/t/g', undefined);
    expect(ledger.isOurs('Group/t/g', {})).toBe(true);
  });
});
