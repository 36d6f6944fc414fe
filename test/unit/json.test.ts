// copySharingStrings and sameJson (src/model/json.ts). copySharingStrings is validateDocument's copy; it must behave as
// structuredClone for parsed JSON and YAML (a copy that can be changed without touching the input,
// aliases kept shared, dates kept), and keep an own `__proto__` key a key.
import yaml from 'js-yaml';
import { copySharingStrings, sameJson } from '../../src/model/json.js';
import { validateDocument } from '../../src/model/validate.js';
import { doc } from '../support/fixtures.js';

describe('copySharingStrings', () => {
  test('copies objects and arrays, so defaults written into the copy leave the input alone', () => {
    const input = JSON.parse('{"spec":{"email":"ann@example.com","groups":["a","b"]}}') as { spec: { email: string; groups: string[]; language?: string } };
    const copy = copySharingStrings(input);
    expect(copy).toEqual(input);
    expect(copy.spec).not.toBe(input.spec);
    expect(copy.spec.groups).not.toBe(input.spec.groups);
    copy.spec.language = 'en';
    copy.spec.groups.push('c');
    expect(input.spec).toEqual({ email: 'ann@example.com', groups: ['a', 'b'] });
  });

  test('a value referenced twice (a YAML alias) is copied once and stays shared; dates stay dates', () => {
    const input = yaml.load('a: &x {k: [1, 2]}\nb: *x\nwhen: 2026-12-31\n') as { a: object; b: object; when: Date };
    const copy = copySharingStrings(input);
    expect(copy.a).toBe(copy.b);
    expect(copy.a).not.toBe(input.a);
    // (toString, not instanceof: jest's module realm has a Date of its own)
    expect(Object.prototype.toString.call(copy.when)).toBe('[object Date]');
    expect(copy.when).not.toBe(input.when);
    expect(copy.when.getTime()).toBe(input.when.getTime());
  });

  test("an own __proto__ key stays an own key of the copy, never its prototype", () => {
    const input = JSON.parse('{"__proto__":{"polluted":true},"x":1}') as Record<string, unknown>;
    const copy = copySharingStrings(input);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.keys(copy)).toEqual(['__proto__', 'x']);
    expect(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value).toEqual({ polluted: true });
  });

  test('validateDocument fills defaults into its copy, not into the object it was given', () => {
    const input = doc('User', 'ann', { email: 'ann@example.com' });
    const before = JSON.stringify(input);
    const result = validateDocument(input);
    expect(result.problems).toEqual([]);
    expect((result.document!.spec as { language?: string }).language).toBe('en');
    expect(JSON.stringify(input)).toBe(before);
  });
});

describe('sameJson', () => {
  test('equal values in any key order, unequal on any difference of value, type, length or key', () => {
    expect(sameJson({ a: 1, b: [1, { c: 'x' }] }, JSON.parse('{"b":[1,{"c":"x"}],"a":1}'))).toBe(true);
    expect(sameJson(null, null)).toBe(true);
    for (const [a, b] of [
      [{ a: 1 }, { a: '1' }], [{ a: 1 }, { a: 1, b: 2 }], [{ a: 1, b: undefined }, { a: 1, c: undefined }], [[1, 2], [2, 1]],
      [[1], { 0: 1 }], [{}, []], [null, {}], [{ a: null }, { a: {} }], [[1, 2], [1, 2, 3]],
    ] as const) {
      expect(sameJson(a, b)).toBe(false);
      expect(sameJson(b, a)).toBe(false);
    }
  });
});
