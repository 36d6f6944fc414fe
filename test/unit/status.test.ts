// Status conditions (src/k8s/status.ts): when lastTransitionTime moves, and when two statuses are equal.
import { setCondition, statusEqual, type Condition } from '../../src/k8s/status.js';

describe('status conditions', () => {
  const t1 = new Date('2024-01-01T00:00:00Z');
  const t2 = new Date('2024-01-02T00:00:00Z');

  it('adds a condition with lastTransitionTime = now', () => {
    const out = setCondition([], { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', observedGeneration: 1 }, t1);
    expect(out).toEqual([
      { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', observedGeneration: 1, lastTransitionTime: '2024-01-01T00:00:00Z' },
    ]);
  });

  it('keeps lastTransitionTime when the status does not change, even if reason or message do', () => {
    const before = setCondition([], { type: 'Ready', status: 'False', reason: 'RoleNotFound', message: 'a' }, t1);
    const after = setCondition(before, { type: 'Ready', status: 'False', reason: 'GroupNotFound', message: 'b' }, t2);
    expect(after[0]).toMatchObject({ reason: 'GroupNotFound', message: 'b', lastTransitionTime: '2024-01-01T00:00:00Z' });
    const flipped = setCondition(after, { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok' }, t2);
    expect(flipped[0]!.lastTransitionTime).toBe('2024-01-02T00:00:00Z');
  });

  it('leaves other conditions and the input array alone', () => {
    const input: Condition[] = [
      { type: 'Other', status: 'True', reason: 'X', message: '', lastTransitionTime: '2020-01-01T00:00:00Z' },
    ];
    const out = setCondition(input, { type: 'Ready', status: 'True', reason: 'Applied', message: '' }, t1);
    expect(input).toHaveLength(1);
    expect(out.map((c) => c.type)).toEqual(['Other', 'Ready']);
  });

  it('statusEqual ignores lastTransitionTime and condition order, nothing else', () => {
    const a = { observedGeneration: 2, conditions: [
      { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', lastTransitionTime: '2024-01-01T00:00:00Z' },
      { type: 'Synced', status: 'True', reason: 'Done', message: '' },
    ] };
    const b = { observedGeneration: 2, conditions: [
      { type: 'Synced', status: 'True', reason: 'Done', message: '', lastTransitionTime: '2030-01-01T00:00:00Z' },
      { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', lastTransitionTime: '2025-05-05T00:00:00Z' },
    ] };
    expect(statusEqual(a, b)).toBe(true);
    expect(statusEqual(a, { ...b, observedGeneration: 3 })).toBe(false);
    expect(statusEqual(a, { ...b, conditions: [b.conditions[1]!] })).toBe(false);
    expect(statusEqual(a, { ...b, conditions: [{ ...b.conditions[0]!, message: 'x' }, b.conditions[1]!] })).toBe(false);
    expect(statusEqual(undefined, {})).toBe(true);
    expect(statusEqual(undefined, { conditions: [] })).toBe(true);
    expect(statusEqual({ extra: { n: 1 } }, { extra: { n: 1 } })).toBe(true);
    expect(statusEqual({ extra: { n: 1 } }, { extra: { n: 2 } })).toBe(false);
  });
});
