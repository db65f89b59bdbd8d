// HTTP request durations for Prometheus, labelled by route pattern (never by raw URL: no id explosion).

import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Histogram } from 'prom-client';
import type { ApiContext } from './context.ts';

export function httpMetrics(ctx: ApiContext): FastifyPluginAsync {
  const existing = ctx.metrics.getSingleMetric('timehook_http_request_duration_seconds');
  const histogram =
    (existing as Histogram<'method' | 'route' | 'status'> | undefined) ??
    new Histogram({
      name: 'timehook_http_request_duration_seconds',
      help: 'HTTP request durations by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [ctx.metrics],
    });
  return fp(async (app) => {
    app.addHook('onResponse', async (request, reply) => {
      histogram.observe(
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      );
    });
  });
}
