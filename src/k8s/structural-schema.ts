/**
 * A JSON Schema as a Kubernetes structural schema (apiextensions.k8s.io/v1 JSONSchemaProps):
 * - `additionalProperties: false` is dropped: CRDs prune unknown fields instead (and a
 *   structural schema may not say both `properties` and `additionalProperties`);
 * - `const` is dropped (not a CRD keyword; whoever holds the JSON Schema validates with it anyway);
 * - any other keyword outside what apiextensions.k8s.io/v1 accepts throws, so a schema change
 *   that a CRD cannot carry is noticed when the CRD is generated, not at install.
 */

/** Keywords of JSONSchemaProps (apiextensions.k8s.io/v1) a structural schema may carry. */
const ALLOWED_KEYWORDS: ReadonlySet<string> = new Set([
  'type', 'description', 'title', 'format', 'default', 'enum', 'pattern', 'nullable', 'example',
  'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'multipleOf',
  'maxLength', 'minLength', 'maxItems', 'minItems', 'maxProperties', 'minProperties',
  'required', 'properties', 'items', 'additionalProperties', 'allOf', 'anyOf', 'oneOf', 'not',
]);

/**
 * A JSON Schema as a structural CRD schema. `path` names the node in
 * error messages. Never mutates its input.
 */
export function toStructuralSchema(schema: Record<string, unknown>, path = '$'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'const') continue;
    if (key === 'additionalProperties' && value === false) continue;
    if (key.startsWith('x-kubernetes-')) {
      out[key] = structuredClone(value);
      continue;
    }
    if (!ALLOWED_KEYWORDS.has(key)) {
      throw new Error(`${path}: JSON Schema keyword '${key}' cannot be carried by a CRD schema`);
    }
    if (key === 'properties') {
      const props: Record<string, unknown> = {};
      for (const [name, sub] of Object.entries(value as Record<string, Record<string, unknown>>)) {
        props[name] = toStructuralSchema(sub, `${path}.${name}`);
      }
      out[key] = props;
    } else if (key === 'items' || (key === 'additionalProperties' && typeof value === 'object' && value !== null) || key === 'not') {
      out[key] = toStructuralSchema(value as Record<string, unknown>, `${path}.${key}`);
    } else if (key === 'allOf' || key === 'anyOf' || key === 'oneOf') {
      out[key] = (value as Record<string, unknown>[]).map((sub, i) => toStructuralSchema(sub, `${path}.${key}[${i}]`));
    } else if (key === 'additionalProperties' && value === true) {
      // `additionalProperties: true` is a structural no-op only with preserve-unknown-fields.
      out['x-kubernetes-preserve-unknown-fields'] = true;
    } else {
      out[key] = structuredClone(value);
    }
  }
  return out;
}
