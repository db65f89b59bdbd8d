// TypeBox pieces shared by the webhook routes and the delivery log routes: the error responses, the empty
// query string and the webhook id in the path. Schemas only; the collections API has its own in
// collection-schemas.ts. Query schemas stay open (additionalProperties: true): an unknown query parameter is
// ignored, as upstream's ASP.NET does, while the known ones keep their validation.

import { Type } from 'typebox';

/** The upstream error format: {"error":{"code","message","reasons"?}}. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      reasons: Type.Optional(Type.Array(Type.String())),
    }),
  },
  { description: 'An error.' },
);

const ValidationErrors = Type.Object(
  {
    validationErrors: Type.Array(Type.Object({ property: Type.String(), message: Type.String() })),
  },
  { description: 'The body does not match its schema or is not JSON.' },
);

/** A 400: an error, or validationErrors when the body fails its schema. */
export const BadRequest = Type.Union([ErrorBody, ValidationErrors], {
  description: 'The request is invalid: an error, or validationErrors for the body.',
});

/** A route without query parameters of its own: any parameter sent (`$top`, a cache-buster `_`) is ignored. */
export const NoQuery = Type.Object({}, { additionalProperties: true });

export const WebhookIdParams = Type.Object({ id: Type.String({ description: 'The webhook id (a UUID).' }) });
