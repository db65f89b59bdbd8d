// One table of error codes and their HTTP statuses, and the AppError every layer throws (SPEC §1.6).
// The API's error handler turns these into the upstream body {"error":{"code","message","reasons"?}}.

export const ERROR_STATUS = {
  BadRequest: 400,
  UserAgentRequired: 400,
  InvalidFilter: 400,
  InvalidExternalReference: 400,
  UnknownCollection: 400,
  InvalidDestinationUrl: 400,
  UnknownLink: 400,
  InvalidContinuationToken: 400,
  InvalidDeltaToken: 400,
  Unauthorized: 401,
  NotFound: 404,
  MethodNotAllowed: 405,
  Conflict: 409,
  WebhookLimitReached: 409,
  ExternalReferenceInUse: 409,
  EntityInUse: 409,
  WebhookNotEnabled: 409,
  Gone: 410,
  PayloadTooLarge: 413,
  UriTooLong: 414,
  UnsupportedMediaType: 415,
  TooManyRequests: 429,
  InternalServerError: 500,
  ServiceUnavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly reasons?: string[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

export interface ValidationIssue {
  property: string;
  message: string;
}

/** Body schema failures: rendered without the error wrapper, as upstream does. */
export class BodyValidationError extends Error {
  readonly status = 400;
  constructor(readonly validationErrors: ValidationIssue[]) {
    super(validationErrors.map((v) => `${v.property}: ${v.message}`).join('; '));
  }
}

/** The store cannot be reached; the API answers 503 and /readyz reports not ready. */
export class StoreUnavailableError extends Error {}

export const notFound = (what: string): AppError => new AppError('NotFound', `${what} was not found.`);
