import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { GatewayError } from '../errors/index.ts';
import type { ApiKeyVerifier, ApiPrincipal, ApiRole } from './api-keys.ts';

/**
 * Authentication (who: an API key in `Authorization: Bearer <key>` or `X-Api-Key`) runs for every /v1 request
 * before its body is read, so an unauthenticated caller cannot make the gateway parse or spool anything.
 * Authorization (may this role call this route) is declared per route.
 */
const principals = new WeakMap<FastifyRequest, ApiPrincipal>();

export function authenticate(verifier: ApiKeyVerifier): onRequestAsyncHookHandler {
  return async (request) => {
    const presented = presentedKey(request);
    const principal = presented === undefined ? undefined : verifier.verify(presented);
    if (!principal) throw new GatewayError('GW_ERR_API_UNAUTHORIZED');
    principals.set(request, principal);
  };
}

export function requireRole(roles: readonly ApiRole[]): onRequestAsyncHookHandler {
  return async (request) => {
    const principal = principals.get(request);
    if (!principal) throw new GatewayError('GW_ERR_API_UNAUTHORIZED');
    if (!roles.includes(principal.role)) throw new GatewayError('GW_ERR_API_FORBIDDEN', `allowed for: ${roles.join(', ')}`);
  };
}

/** The caller of an authenticated request. */
export function principalOf(request: FastifyRequest): ApiPrincipal {
  const principal = principals.get(request);
  if (!principal) throw new GatewayError('GW_ERR_API_UNAUTHORIZED');
  return principal;
}

/** The delivery-log actor for the caller: role and key id (a key's name might be a person's name). */
export function actorOf(request: FastifyRequest): string {
  const p = principalOf(request);
  return `${p.role}:${p.keyId}`;
}

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(authorization);
    return m ? m[1] : undefined;
  }
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}
