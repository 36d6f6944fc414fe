// What the informer cache keeps of an object: everything reconcile reads, without the two large
// fields nobody here reads (managedFields, kubectl's last-applied-configuration annotation).
import { LAST_APPLIED_ANNOTATION, slimForCache } from '../../src/k8s/informer.js';

describe('slimForCache', () => {
  test('drops managedFields and the last-applied annotation, keeps every other annotation and field', () => {
    const obj = {
      apiVersion: 'rpa-access.io/v1alpha1', kind: 'User',
      metadata: {
        name: 'ann', namespace: 't', generation: 3, finalizers: ['rpa-access.io/store'],
        annotations: { [LAST_APPLIED_ANNOTATION]: JSON.stringify({ spec: { email: 'ann@example.com' } }), 'rpa-access.io/paused': 'true' },
        managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
      },
      spec: { email: 'ann@example.com' },
      status: { observedGeneration: 3 },
    };
    expect(slimForCache(obj)).toEqual({
      apiVersion: 'rpa-access.io/v1alpha1', kind: 'User',
      metadata: { name: 'ann', namespace: 't', generation: 3, finalizers: ['rpa-access.io/store'], annotations: { 'rpa-access.io/paused': 'true' } },
      spec: { email: 'ann@example.com' },
      status: { observedGeneration: 3 },
    });
  });

  test('an object whose only annotation was last-applied keeps no annotations; one without either is unchanged', () => {
    const applied = { metadata: { name: 'a', annotations: { [LAST_APPLIED_ANNOTATION]: '{}' } } };
    expect(slimForCache(applied)).toEqual({ metadata: { name: 'a' } });
    const plain = { metadata: { name: 'b', labels: { x: 'y' } } };
    expect(slimForCache(plain)).toEqual({ metadata: { name: 'b', labels: { x: 'y' } } });
  });

  test('sharing repeated strings changes no value, and leaves absent fields absent', () => {
    const make = (name: string) => JSON.parse(JSON.stringify({
      apiVersion: 'rpa-access.io/v1alpha1', kind: 'User',
      metadata: { name, namespace: 'finance', finalizers: ['rpa-access.io/store'], creationTimestamp: '2026-12-03T07:00:00Z', managedFields: [{}] },
      spec: { email: `${name}@example.com` },
      status: { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Applied', message: 'In the access store and effective.', lastTransitionTime: '2026-12-03T07:00:05Z' }, { type: 'Other' }] },
    })) as Record<string, unknown>;
    for (const name of ['a', 'b']) {
      const expected = make(name);
      delete (expected.metadata as Record<string, unknown>).managedFields;
      const slim = slimForCache(make(name) as never);
      expect(slim).toEqual(expected);
      expect(Object.keys((slim as { status: { conditions: object[] } }).status.conditions[1]!)).toEqual(['type']);
    }
  });
});
