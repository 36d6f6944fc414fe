/**
 * UiPath's published OpenAPI text (openapi/*.yaml, copied unchanged from the vendor's uipathcli
 * definitions) turned into an operation table and ajv validators, so the double checks requests
 * and responses against the vendor's own words rather than a hand rewrite.
 *
 * Loading applies a few mechanical rules, the double's strictness, and nothing else:
 * - every object schema that lists `properties` and says nothing of `additionalProperties`
 *   refuses unknown properties (an OData server refuses a property its type does not declare);
 * - `allOf` composites are flattened, so the refusal above also holds for them;
 * - an OpenAPI `discriminator` with implicit mapping becomes a `const` on each subtype (the
 *   subtype's schema name is the discriminator value, as OpenAPI 3.0 specifies);
 * - vendor extensions (`x-*`) and annotations ajv does not know (`deprecated`, `discriminator`)
 *   are dropped; `nullable` is kept (ajv implements it);
 * - `#/components/schemas/X` references point into one ajv schema per document.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as a namespace.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

export type ApiName = 'orchestrator' | 'identity' | 'token';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const FILES: Record<ApiName, string> = {
  orchestrator: 'uipath-orchestrator-access.openapi.yaml',
  identity: 'uipath-identity-access.openapi.yaml',
  token: 'uipath-identity-token.openapi.yaml',
};

export interface ParameterSpec {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  /** The JSON type the string from the URL is converted to before validation. */
  type: 'integer' | 'boolean' | 'string' | 'number';
}

export interface Operation {
  api: ApiName;
  operationId: string;
  method: HttpMethod;
  /** The path exactly as the vendor's document writes it, e.g. `/odata/Users({key})`. */
  template: string;
  regex: RegExp;
  /** Names of the path parameters in the order of the regex groups. */
  pathParams: string[];
  parameters: ParameterSpec[];
  parametersSchema: object;
  /** Media types the request body may use (empty: the operation takes no body). */
  requestContentTypes: string[];
  requestSchema?: object;
  /** Per declared status: the schema of its JSON body, or null when the status has no body. */
  responses: Map<number, object | null>;
  /** Any one of these scopes grants the call (from the vendor's "OAuth required scopes" text). */
  scopes: string[];
  /** Name of the entity type of a collection result, for $filter/$select property checks. */
  entitySchema?: string;
}

const SCHEMA_DIR = fileURLToPath(new URL('./openapi/', import.meta.url));

function load(api: ApiName): JsonObject {
  return yaml.load(fs.readFileSync(SCHEMA_DIR + FILES[api], 'utf8')) as JsonObject;
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const REF_PREFIX = '#/components/schemas/';

/** Merge `allOf: [{$ref: Base}], properties: {...}` into one object schema. */
function flattenAllOf(schemas: JsonObject): void {
  for (const [name, schema] of Object.entries(schemas)) {
    if (!isObject(schema) || !Array.isArray(schema.allOf)) continue;
    const properties: JsonObject = {};
    const required = new Set<string>();
    for (const part of schema.allOf) {
      const base = isObject(part) && typeof part.$ref === 'string' ? schemas[part.$ref.slice(REF_PREFIX.length)] : part;
      if (!isObject(base)) throw new Error(`openapi: ${name}: cannot flatten allOf part`);
      Object.assign(properties, base.properties ?? {});
      for (const r of (base.required as string[] | undefined) ?? []) required.add(r);
      if (isObject(base.discriminator)) {
        const prop = base.discriminator.propertyName as string;
        // Implicit discriminator mapping: the value is the subtype's schema name.
        properties[prop] = { type: 'string', enum: [name] };
      }
    }
    Object.assign(properties, schema.properties ?? {});
    for (const r of (schema.required as string[] | undefined) ?? []) required.add(r);
    const flat: JsonObject = { type: 'object', properties };
    if (required.size > 0) flat.required = [...required];
    if (typeof schema.description === 'string') flat.description = schema.description;
    schemas[name] = flat;
  }
}

const DROPPED_KEYWORDS = new Set(['deprecated', 'discriminator', 'example']);

/** The strictness rules of the module comment, applied to one schema tree. */
function strictify(node: Json, docId: string): Json {
  if (Array.isArray(node)) return node.map((n) => strictify(n, docId));
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-') || DROPPED_KEYWORDS.has(key)) continue;
    if (key === '$ref' && typeof value === 'string') {
      if (!value.startsWith(REF_PREFIX)) throw new Error(`openapi: unexpected $ref ${value}`);
      out.$ref = `${docId}#/definitions/${value.slice(REF_PREFIX.length)}`;
      continue;
    }
    // `properties` maps names to schemas: its keys are data, not keywords.
    if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strictify(v, docId)]));
      continue;
    }
    out[key] = strictify(value, docId);
  }
  if (out.type === 'object' && isObject(out.properties) && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

/** Scopes named by the vendor's description ("OAuth required scopes: OR.Users or OR.Users.Read."). */
function scopesOf(description: string | undefined): string[] | undefined {
  const m = /OAuth required scopes: ([^\n]+?)\.(\s|$)/.exec(description ?? '');
  return m?.[1]?.split(/\s+or\s+/).map((s) => s.trim());
}

/**
 * Identity's user-management operations do not state their scopes in the document; UiPath's
 * documentation (reference README) names PM.User for them, as for the user reads.
 */
function fallbackScopes(api: ApiName, template: string, method: HttpMethod): string[] {
  if (api === 'token') return [];
  if (api === 'identity' && template.startsWith('/api/User')) {
    return method === 'GET' ? ['PM.User', 'PM.User.Read'] : ['PM.User', 'PM.User.Write'];
  }
  throw new Error(`openapi: ${method} ${template} names no OAuth scope`);
}

function templateRegex(template: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  let source = '';
  for (const part of template.split(/(\{[^}]+\})/)) {
    const m = /^\{([^}]+)\}$/.exec(part);
    if (m?.[1]) {
      names.push(m[1]);
      source += '([^/]*?)';
    } else {
      source += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return { regex: new RegExp(`^${source}$`), names };
}

export class SchemaSet {
  readonly ajv: Ajv;
  readonly operations: Operation[] = [];
  private readonly definitions = new Map<ApiName, JsonObject>();

  constructor() {
    this.ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true });
    (addFormats as unknown as (a: Ajv, f: string[]) => void)(this.ajv, ['uuid', 'email', 'date-time', 'int32', 'int64']);
    for (const api of Object.keys(FILES) as ApiName[]) this.loadDocument(api);
    this.ajv.addSchema(ERROR_SCHEMAS);
  }

  private loadDocument(api: ApiName): void {
    const doc = load(api);
    const docId = `uipath-${api}`;
    const components = isObject(doc.components) && isObject(doc.components.schemas) ? doc.components.schemas : {};
    flattenAllOf(components);
    const definitions = strictify(components, docId) as JsonObject;
    this.definitions.set(api, definitions);
    this.ajv.addSchema({ $id: docId, definitions });
    const paths = doc.paths as JsonObject;
    for (const [template, item] of Object.entries(paths)) {
      if (!isObject(item)) continue;
      for (const [method, raw] of Object.entries(item)) {
        if (!isObject(raw)) continue;
        this.operations.push(this.operation(api, docId, template, method.toUpperCase() as HttpMethod, raw));
      }
    }
  }

  private operation(api: ApiName, docId: string, template: string, method: HttpMethod, raw: JsonObject): Operation {
    const operationId = raw.operationId as string;
    const { regex, names } = templateRegex(template);
    const parameters: ParameterSpec[] = [];
    const properties: JsonObject = {};
    const required: string[] = [];
    for (const p of (raw.parameters as JsonObject[] | undefined) ?? []) {
      const schema = strictify(p.schema ?? {}, docId) as JsonObject;
      const type = (schema.type as ParameterSpec['type'] | undefined) ?? 'string';
      parameters.push({ name: p.name as string, in: p.in as 'path' | 'query', required: p.required === true, type });
      properties[p.name as string] = schema;
      if (p.required === true) required.push(p.name as string);
    }
    const parametersSchema = { type: 'object', properties, required, additionalProperties: false };

    const body = isObject(raw.requestBody) && isObject(raw.requestBody.content) ? raw.requestBody.content : {};
    const requestContentTypes = Object.keys(body);
    const first = Object.values(body)[0];
    const requestSchema = isObject(first) ? (strictify(first.schema ?? {}, docId) as JsonObject) : undefined;

    const responses = new Map<number, object | null>();
    let entitySchema: string | undefined;
    for (const [status, response] of Object.entries((raw.responses as JsonObject | undefined) ?? {})) {
      const content = isObject(response) && isObject(response.content) ? response.content : {};
      const json = content['application/json'];
      if (isObject(json) && isObject(json.schema)) {
        responses.set(Number(status), strictify(json.schema, docId) as JsonObject);
        const ref = json.schema.$ref;
        if (typeof ref === 'string' && ref.includes('ODataValueOfIEnumerableOf')) {
          entitySchema = ref.slice(REF_PREFIX.length + 'ODataValueOfIEnumerableOf'.length);
        }
      } else {
        responses.set(Number(status), null);
      }
    }
    const scopes = scopesOf(raw.description as string | undefined) ?? fallbackScopes(api, template, method);
    return {
      api, operationId, method, template, regex, pathParams: names, parameters, parametersSchema,
      requestContentTypes, requestSchema, responses, scopes, entitySchema,
    };
  }

  /** The (strictified) schema of a named component, e.g. for the property names of UserDto. */
  definition(api: ApiName, name: string): JsonObject {
    const d = this.definitions.get(api)?.[name];
    if (!isObject(d)) throw new Error(`openapi: no schema ${name} in ${api}`);
    return d;
  }

  private readonly compiled = new WeakMap<object, ValidateFunction>();

  /** A validator for one of the operation schemas above, compiled on first use (compiling all takes seconds). */
  compile(schema: object): ValidateFunction {
    let v = this.compiled.get(schema);
    if (!v) {
      v = this.ajv.compile(schema);
      this.compiled.set(schema, v);
    }
    return v;
  }

  validator(ref: string): ValidateFunction {
    const v = this.ajv.getSchema(ref);
    if (!v) throw new Error(`no schema ${ref}`);
    return v;
  }
}

/**
 * Bodies the vendor's documents do not describe: Orchestrator's error body (as UiPath's API guide
 * shows it: `message`, `errorCode` from its response-code table, `traceId`, ...), Identity's
 * ASP.NET problem details, and the OAuth 2.0 token endpoint's success and error bodies (RFC 6749
 * 5.1 and 5.2). They are the double's own, written here once.
 */
let shared: SchemaSet | undefined;

/** One SchemaSet per process: the documents do not change, and loading them costs a moment. */
export function uipathSchemas(): SchemaSet {
  shared ??= new SchemaSet();
  return shared;
}

export const ERROR_SCHEMAS = {
  $id: 'uipath-double',
  definitions: {
    OrchestratorError: {
      type: 'object',
      required: ['message', 'errorCode', 'traceId'],
      additionalProperties: false,
      properties: {
        message: { type: 'string' },
        errorCode: { type: 'integer' },
        traceId: { type: 'string' },
        result: { type: 'null' },
        targetUrl: { type: 'null' },
        success: { const: false },
        error: {
          type: 'object',
          additionalProperties: false,
          required: ['code', 'message'],
          properties: { code: { type: 'integer' }, message: { type: 'string' }, details: { type: ['string', 'null'] } },
        },
        unAuthorizedRequest: { type: 'boolean' },
        __abp: { const: true },
      },
    },
    ProblemDetails: {
      type: 'object',
      required: ['title', 'status', 'traceId'],
      additionalProperties: false,
      properties: {
        type: { type: 'string' },
        title: { type: 'string' },
        status: { type: 'integer' },
        detail: { type: 'string' },
        traceId: { type: 'string' },
      },
    },
    TokenResponse: {
      type: 'object',
      required: ['access_token', 'expires_in', 'token_type', 'scope'],
      additionalProperties: false,
      properties: {
        access_token: { type: 'string', minLength: 1 },
        expires_in: { type: 'integer', minimum: 1 },
        token_type: { const: 'Bearer' },
        scope: { type: 'string' },
      },
    },
    TokenError: {
      type: 'object',
      required: ['error'],
      additionalProperties: false,
      properties: {
        error: { enum: ['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope'] },
        error_description: { type: 'string' },
      },
    },
  },
} as const;

export function describeErrors(errors: ErrorObject[] | null | undefined, root: string): string {
  return (errors ?? [])
    .map((e) => {
      const where = `${root}${e.instancePath.replace(/\//g, '.')}`;
      if (e.keyword === 'additionalProperties') {
        return `${where}: the property '${(e.params as { additionalProperty: string }).additionalProperty}' does not exist on this type`;
      }
      return `${where}: ${e.message ?? e.keyword}`;
    })
    .join('; ');
}
