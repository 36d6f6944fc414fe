/**
 * A refusal of the double, carried to the HTTP layer which shapes it as the API at hand answers
 * (Orchestrator's `{message, errorCode, ...}`, Identity's problem details or IdentityResult).
 * errorCode values follow UiPath's published response-code table where it has one:
 * 1000 invalid request, 1001 name already used, 1002 item not found; the rest are the double's.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
    /** For Identity's IdentityResult bodies: ASP.NET Identity's error code (e.g. DuplicateEmail). */
    readonly identityCode?: string,
  ) {
    super(message);
  }
}

export const ERROR_CODES = {
  invalidRequest: 1000,
  nameAlreadyUsed: 1001,
  itemNotFound: 1002,
  /** Static roles: "defined by the application and cannot be deleted", not editable. */
  staticRole: 1101,
  /** A folder (or a descendant) still holds user associations. */
  folderInUse: 1102,
  /** A role of the wrong scope for the place it is assigned (tenant vs folder). */
  roleScope: 1103,
  notImplemented: 1999,
  unauthenticated: 0,
  forbidden: 1100,
  rateLimited: 1405,
  unavailable: 1503,
} as const;

export const notFound = (what: string, id: unknown): ApiError =>
  new ApiError(404, ERROR_CODES.itemNotFound, `${what} does not exist. (${String(id)})`);

export const badRequest = (message: string): ApiError => new ApiError(400, ERROR_CODES.invalidRequest, message);

export const nameTaken = (name: string): ApiError => new ApiError(409, ERROR_CODES.nameAlreadyUsed, `The name ${name} is already used.`);
