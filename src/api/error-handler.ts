// One error handler for the whole API (SPEC §1.6): AppError → {"error":{code,message,reasons?}},
// body schema failures → {"validationErrors":[…]}, fastify's own errors mapped to the same format,
// and anything unexpected → 500 with no internals (logged with the request id).

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, BodyValidationError, StoreUnavailableError, type ErrorCode } from '../errors.ts';

interface AjvIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/**
 * Errors that mean the store cannot serve now, whatever the request: the connection failed or was cut
 * (server restart, failover, pg_terminate_backend), the database refuses connections (restart, `alter database
 * … allow_connections false`, too many clients), or a statement or lock wait ran out of time.
 */
const PG_UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  '53300', // too_many_connections
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
]);
const PG_UNAVAILABLE_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|is not currently accepting connections|the database system is (starting up|shutting down|in recovery mode)|PGlite is closed|Cannot use a pool after calling end/i;

function propertyOf(issue: AjvIssue): string {
  const path = (issue.instancePath ?? '').split('/').filter(Boolean).join('.');
  const missing = issue.params?.missingProperty ?? issue.params?.additionalProperty;
  if (typeof missing === 'string') return path ? `${path}.${missing}` : missing;
  return path;
}

function messageOf(issue: AjvIssue): string {
  if (issue.keyword === 'additionalProperties') return 'is not a known property';
  if (issue.keyword === 'required') return 'is required';
  if (issue.keyword === 'enum' && Array.isArray(issue.params?.allowedValues)) {
    return `must be one of ${(issue.params.allowedValues as unknown[]).map(String).join(', ')}`;
  }
  return issue.message ?? 'is invalid';
}

/** True for errors of the store's availability (answered 503), not of the request or of Timehook's code. */
export function isStoreUnavailable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  // Class 08: connection exceptions (connect failures, broken connections, protocol violations).
  if (typeof code === 'string' && (PG_UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  const message = (error as Error | null)?.message ?? '';
  return PG_UNAVAILABLE_MESSAGES.test(message);
}

export function sendError(
  reply: FastifyReply,
  code: ErrorCode | AppError,
  message?: string,
  reasons?: string[],
): FastifyReply {
  const error = code instanceof AppError ? code : new AppError(code, message ?? code, reasons);
  if (error.headers) void reply.headers(error.headers);
  return reply.code(error.status).send({
    error: { code: error.code, message: error.message, ...(error.reasons ? { reasons: error.reasons } : {}) },
  });
}

export function errorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof AppError) return sendError(reply, error);
  if (error instanceof BodyValidationError)
    return reply.code(400).send({ validationErrors: error.validationErrors });
  const fe = error as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
  if (fe.validation) {
    const issues = fe.validation;
    if (fe.validationContext === 'body') {
      // No body at all, or an empty one with a JSON content type (app.ts parses that as none).
      if (request.body === undefined) {
        return reply.code(400).send({
          validationErrors: [
            {
              property: '',
              message: 'The body is required; send a JSON object with Content-Type: application/json.',
            },
          ],
        });
      }
      return reply.code(400).send({
        validationErrors: issues.map((i) => ({ property: propertyOf(i), message: messageOf(i) })),
      });
    }
    const where = fe.validationContext === 'querystring' ? 'query parameter' : 'path parameter';
    const reasons = issues.map((i) =>
      `${where} ${propertyOf(i) || '(root)'} ${messageOf(i)}`.replace(/\s+/g, ' '),
    );
    return sendError(reply, 'BadRequest', `The request has invalid ${where}s.`, reasons);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return reply
        .code(400)
        .send({ validationErrors: [{ property: '', message: `The body is not valid JSON: ${fe.message}` }] });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendError(reply, 'PayloadTooLarge', 'The request body is larger than this endpoint accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return sendError(
        reply,
        'UnsupportedMediaType',
        `Content-Type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted here; send application/json.`,
      );
    default:
      break;
  }
  if (error instanceof SyntaxError && fe.statusCode === 400) {
    return reply.code(400).send({
      validationErrors: [{ property: '', message: `The body is not valid JSON: ${error.message}` }],
    });
  }
  if (fe.statusCode === 429) {
    return sendError(
      reply,
      'TooManyRequests',
      'This client has sent too many requests; retry after the Retry-After delay.',
    );
  }
  if (isStoreUnavailable(error)) {
    request.log.warn({ err: error }, 'store unavailable');
    const code = (error as { code?: unknown }).code;
    return sendError(
      reply,
      new AppError(
        'ServiceUnavailable',
        code === '57014' || code === '55P03'
          ? 'The store did not answer in time; retry shortly.'
          : 'The store is unreachable; retry shortly.',
        undefined,
        { 'retry-after': '5' },
      ),
    );
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return sendError(reply, 'BadRequest', fe.message);
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendError(
    reply,
    'InternalServerError',
    `An unexpected error occurred; quote request id ${request.id} when reporting it.`,
  );
}
