// Liveness, readiness and Prometheus metrics; outside the connector, so no bearer token is needed.

import type { FastifyPluginAsync } from 'fastify';
import { isMigrated } from '../store/migrate.ts';
import type { ApiContext } from './context.ts';

export function healthRoutes(ctx: ApiContext): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
      const reachable = await ctx.db.ping();
      const migrated = reachable && (await isMigrated(ctx.db));
      return reply.code(reachable && migrated ? 200 : 503).send({
        status: reachable && migrated ? 'ready' : 'unavailable',
        store: ctx.db.kind,
        reachable,
        migrated,
      });
    });
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
      reply.type(ctx.metrics.contentType).send(await ctx.metrics.metrics()),
    );
  };
}
