// The 401 answers of SPEC §1.1: invalid_token and insufficient_scope, with their WWW-Authenticate challenge.

import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';

export function unauthorized(
  message: string,
  error: 'invalid_token' | 'insufficient_scope',
  scope?: string,
): AppError {
  const challenge = scope ? `Bearer error="${error}", scope="${scope}"` : `Bearer error="${error}"`;
  return new AppError('Unauthorized', message, undefined, { 'www-authenticate': challenge });
}

/** Throws the spec's 401 insufficient_scope unless the request's token has every scope named. */
export function requireScopes(request: FastifyRequest, ...scopes: string[]): void {
  const missing = scopes.filter((s) => !request.principal?.scopes.has(s));
  if (missing.length > 0) {
    throw unauthorized(
      `The access token lacks the scope ${missing.join(' and ')}.`,
      'insufficient_scope',
      missing.join(' '),
    );
  }
}
