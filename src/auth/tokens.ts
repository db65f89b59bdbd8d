// Access tokens: issued by the client-credentials grant, verified on every connector request (SPEC §1.1).

import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { ALL_SCOPES } from '../domain/scopes.ts';
import { SIGNING_ALG, TOKEN_TTL_SECONDS, type KeyRing } from './key-ring.ts';

export const TOKEN_AUDIENCE = 'connector-protimeapi';

export interface Principal {
  tenant: string;
  clientId: string;
  scopes: ReadonlySet<string>;
}

export async function issueAccessToken(
  keyRing: KeyRing,
  issuer: string,
  claims: { tenant: string; clientId: string; scopes: string[] },
): Promise<string> {
  const { kid, key } = keyRing.signingKey();
  return new SignJWT({ tenant: claims.tenant, scope: claims.scopes.join(' ') })
    .setProtectedHeader({ alg: SIGNING_ALG, kid, typ: 'at+jwt' })
    .setIssuer(issuer)
    .setSubject(claims.clientId)
    .setAudience(TOKEN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${TOKEN_TTL_SECONDS}s`)
    .setJti(randomUUID())
    .sign(key);
}

export class InvalidTokenError extends Error {}

/** Verifies signature, expiry and audience; returns the principal or throws InvalidTokenError with the reason. */
export async function verifyAccessToken(keyRing: KeyRing, token: string): Promise<Principal> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    throw new InvalidTokenError('The bearer token is not a JWT.');
  }
  const key = kid === undefined ? undefined : await keyRing.verificationKey(kid);
  if (!key) throw new InvalidTokenError('The bearer token was not signed by this installation.');
  try {
    const { payload } = await jwtVerify(token, key, { audience: TOKEN_AUDIENCE, algorithms: [SIGNING_ALG] });
    if (
      typeof payload.tenant !== 'string' ||
      typeof payload.sub !== 'string' ||
      typeof payload.scope !== 'string'
    ) {
      throw new InvalidTokenError('The bearer token lacks the tenant, sub or scope claim.');
    }
    const scopes = new Set(payload.scope.split(' ').filter((s) => ALL_SCOPES.includes(s)));
    return { tenant: payload.tenant, clientId: payload.sub, scopes };
  } catch (error) {
    if (error instanceof InvalidTokenError) throw error;
    if (error instanceof joseErrors.JWTExpired) throw new InvalidTokenError('The bearer token has expired.');
    throw new InvalidTokenError('The bearer token is invalid.');
  }
}
