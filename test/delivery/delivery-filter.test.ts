import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDeliveryFilter } from '../../src/domain/delivery-filter.ts';

describe('parseDeliveryFilter', () => {
  const valid: [string, unknown][] = [
    ["status eq 'Failed'", { status: 'Failed' }],
    ["status eq 'Pending'", { status: 'Pending' }],
    ["status eq 'Delivered'", { status: 'Delivered' }],
    ["status eq 'Abandoned'", { status: 'Abandoned' }],
    ['entityId eq 1001', { entityId: 1001 }],
    ["status eq 'Failed' and entityId eq 7", { status: 'Failed', entityId: 7 }],
    ["  entityId eq 7   AND   status eq 'Delivered' ", { status: 'Delivered', entityId: 7 }],
  ];
  for (const [text, value] of valid) {
    test(`accepts ${JSON.stringify(text)}`, () =>
      assert.deepEqual(parseDeliveryFilter(text), { ok: true, value }));
  }
  const invalid: [string, RegExp][] = [
    ["status eq 'Lost'", /'Lost' is not a delivery status/],
    ["status eq 'failed'", /'failed' is not a delivery status/],
    ['status eq Failed', /not understood/],
    ["status ne 'Failed'", /not understood/],
    ['entityId eq -1', /not understood/],
    ['entityId eq 1 and entityId eq 2', /entityId twice/],
    ["status eq 'Failed' and status eq 'Pending'", /status twice/],
    ['', /not understood/],
    ["status eq 'Failed' or entityId eq 1", /not understood/],
  ];
  for (const [text, reason] of invalid) {
    test(`rejects ${JSON.stringify(text)}`, () => {
      const result = parseDeliveryFilter(text);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reason, reason);
    });
  }
});
