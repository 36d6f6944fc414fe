/**
 * One CustomResourceDefinition of rpa-access.io/v1alpha1, from what differs between kinds (names,
 * printer columns, description, spec and status schemas): the four access kinds (crds.ts) and
 * the Orchestrator kind (orchestrator.ts) are built by this one function, so every CRD has the
 * same group, labels, category, version, status subresource and root schema.
 */
import { API_GROUP, API_VERSION } from '../../model/catalog.js';
import type { JSONSchema } from '../../model/schemas.js';
import { CRD_CATEGORY } from './resource.js';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'boolean' | 'integer' | 'number' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

/** A printer column; `priority: 1` shows it only with `kubectl get -o wide`. */
export function printerColumn(name: string, jsonPath: string, description: string, type: PrinterColumn['type'] = 'string', priority?: number): PrinterColumn {
  return { name, type, jsonPath, description, ...(priority === undefined ? {} : { priority }) };
}

/** The JSONPath of a condition of `status.conditions`, e.g. `Ready`. */
export function conditionPath(type: string): string {
  return `.status.conditions[?(@.type=="${type}")]`;
}

/**
 * How the API server keeps `status.conditions`: as one atomic value. The operator is the only
 * writer of a status and replaces it whole by merge patch (a JSON merge patch replaces a list
 * anyway), so a map list keyed by `type` (the convention for conditions several server-side
 * appliers share) bought nothing and cost every status write: the API server tracked each field
 * of each condition in `managedFields` and carried that in every later read, write and watch
 * event. On a kube-apiserver 1.20 the operator's status patch took 10-25 % less of its CPU as an
 * atomic list (12 % by the median of three alternating rounds), a cold start 10-13 % less of the
 * machine's, and a User is 147 bytes smaller (bench/README.md).
 */
export const CONDITIONS_LIST = { 'x-kubernetes-list-type': 'atomic' } as const;

/** What `kubectl explain` prints for apiVersion and kind (Kubernetes' own words). */
export interface TypeMetaDescriptions {
  apiVersion: string;
  kind: string;
}

const TYPE_META_DESCRIPTIONS: TypeMetaDescriptions = {
  apiVersion:
    'APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.',
  kind: 'Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase.',
};

export interface CustomResourceShape {
  kind: string;
  plural: string;
  shortNames: readonly string[];
  /** What `kubectl explain <kind>` prints first. */
  description: string;
  printerColumns: PrinterColumn[];
  /** Structural schemas (a CRD accepts nothing else). */
  spec: JSONSchema;
  status: JSONSchema;
  typeMeta?: TypeMetaDescriptions;
}

/** The apiextensions.k8s.io/v1 CustomResourceDefinition of one namespaced kind, with a status subresource. */
export function customResourceDefinition(shape: CustomResourceShape): object {
  const typeMeta = shape.typeMeta ?? TYPE_META_DESCRIPTIONS;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${shape.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'rpa-access' },
    },
    spec: {
      group: API_GROUP,
      names: {
        kind: shape.kind,
        listKind: `${shape.kind}List`,
        plural: shape.plural,
        singular: shape.kind.toLowerCase(),
        shortNames: [...shape.shortNames],
        categories: [CRD_CATEGORY],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: shape.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: shape.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: typeMeta.apiVersion },
                kind: { type: 'string', description: typeMeta.kind },
                // Kubernetes validates metadata itself; a CRD may only restrict name/generateName.
                metadata: { type: 'object' },
                spec: shape.spec,
                status: shape.status,
              },
            },
          },
        },
      ],
    },
  };
}
