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

const PG_UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08006',
  '08001',
  '08003',
]);

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

export function isStoreUnavailable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && PG_UNAVAILABLE_CODES.has(code)) return true;
  const message = (error as Error | null)?.message ?? '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|PGlite is closed|Cannot use a pool after calling end/i.test(
    message,
  );
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
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
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
    return sendError(
      reply,
      'ServiceUnavailable',
      'The store is unreachable; retry shortly.',
      undefined,
    ).header('retry-after', '5');
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
