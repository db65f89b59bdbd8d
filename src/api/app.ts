// The fastify application: request ids, limits, the error format, OpenAPI, health and metrics outside
// the connector; the token endpoint; and the connector plugin whose bearer hook guards every resource.

import { randomUUID } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { authRoutes } from './auth-routes.ts';
import { connectorPlugin } from './connector.ts';
import { CONNECTOR_PREFIX, type ApiContext } from './context.ts';
import { errorHandler, sendError } from './error-handler.ts';
import { healthRoutes } from './health.ts';
import { httpMetrics } from './http-metrics.ts';

export const MAX_URI_LENGTH = 4096;
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** One log line per request, written when it completes (SPEC §5); query strings are left out of it. */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = {
      method: request.method,
      path: request.url.split('?')[0],
      route: request.routeOptions.url,
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      tenant: request.principal?.tenant,
      clientId: request.principal?.clientId,
    };
    if (error) reply.log.error({ ...line, err: error }, 'request failed');
    else reply.log.info(line, 'request');
  }
}

function routePattern(url: string): RegExp {
  const escaped = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+');
  return new RegExp(`^${escaped}/?$`);
}

export async function buildApp(ctx: ApiContext): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = ctx.logger;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: () => randomUUID(),
    logController: new OneLinePerRequest(),
    trustProxy: false,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_URI_LENGTH },
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: false },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler(errorHandler);

  // Remember every route so an unknown method on a known path can answer 405 with Allow.
  const routes: { methods: string[]; pattern: RegExp }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = ([] as string[]).concat(route.method);
    routes.push({ methods, pattern: routePattern(route.url) });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))];
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '));
      return sendError(
        reply,
        'MethodNotAllowed',
        `${request.method} is not allowed on ${path}; use ${allowed.join(', ')}.`,
      );
    }
    return sendError(reply, 'NotFound', `No resource at ${request.method} ${path}.`);
  });

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    if (request.url.length > MAX_URI_LENGTH) {
      return sendError(
        reply,
        'UriTooLong',
        `The request URI is ${request.url.length} characters; the limit is ${MAX_URI_LENGTH}.`,
      );
    }
  });

  // JSON everywhere, form bodies for the token endpoint; anything else (text/plain too) is 415.
  // An empty JSON body counts as no body: generic HTTP wrappers send Content-Type: application/json on a
  // DELETE or a bodiless POST too. Routes that need a body answer its absence with validationErrors.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    body === '' ? done(null, undefined) : parseJson(request, body as string, done),
  );
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Timehook — Protime connector API (protimeapi)',
        version: '1',
        description:
          'Webhooks, delta feed, collections and ingest for absences and the resources they refer to.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/swagger' });
  app.get('/swagger/v1/swagger.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(httpMetrics(ctx));
  await app.register(healthRoutes(ctx));
  // At the root, as upstream's authentication host serves them (SPEC §1.1), and under the prefix as an alias.
  const auth = authRoutes(ctx);
  await app.register(auth);
  await app.register(auth, { prefix: CONNECTOR_PREFIX });
  await app.register(connectorPlugin(ctx), { prefix: CONNECTOR_PREFIX });
  return app;
}
