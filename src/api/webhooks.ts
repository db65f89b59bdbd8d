// Placeholder: routes of this resource are registered here.

import type { FastifyPluginAsync } from 'fastify';
import type { ApiContext } from './context.ts';

export function webhookRoutes(_ctx: ApiContext): FastifyPluginAsync {
  return async () => {};
}
