/** The UiPath Orchestrator + Identity test double (see README.md). */
export { startUiPathDouble, UiPathDouble, ALL_SCOPES, type Application, type UiPathDoubleOptions } from './double.js';
export type { SeedSpec, SeedResult, Snapshot, DoubleState } from './seed.js';
export type { CallRecord, FaultOptions, OutageMode } from './control.js';
export { STATIC_ROLES } from './orchestrator.js';
export { BUILT_IN_GROUPS } from './identity.js';
export { ApiError, ERROR_CODES } from './errors.js';
