import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseWebhookFilter, type WebhookFilter } from '../../src/domain/webhook-filter.ts';

describe('parseWebhookFilter accepts', () => {
  const accepted: [string, WebhookFilter][] = [
    ["status eq 'Enabled'", { status: 'Enabled' }],
    ["status eq 'Disabled'", { status: 'Disabled' }],
    ["collectionName eq 'absences'", { collectionName: 'absences' }],
    ["collectionName eq 'shift-definitions'", { collectionName: 'shift-definitions' }],
    ["status eq 'Enabled' and collectionName eq 'people'", { status: 'Enabled', collectionName: 'people' }],
    [
      "collectionName eq 'absence-definitions' and status eq 'Disabled'",
      { status: 'Disabled', collectionName: 'absence-definitions' },
    ],
    ["collection-name eq 'absences'", { collectionName: 'absences' }],
    [
      "status eq 'Disabled' and collection-name eq 'people'",
      { status: 'Disabled', collectionName: 'people' },
    ],
    ["  status   eq\t'Enabled'  ", { status: 'Enabled' }],
    ["status eq'Enabled'", { status: 'Enabled' }],
  ];
  for (const [text, value] of accepted) {
    test(JSON.stringify(text), () => {
      assert.deepEqual(parseWebhookFilter(text), { ok: true, value });
    });
  }
});

describe('parseWebhookFilter rejects, naming the bad token', () => {
  const rejected: [string, RegExp][] = [
    ['', /filter is empty/],
    ['   ', /filter is empty/],
    ["state eq 'Enabled'", /Unknown filter field 'state'/],
    ["Status eq 'Enabled'", /Unknown filter field 'Status'/],
    ["status ne 'Enabled'", /Expected eq after status but found 'ne'/],
    ["status EQ 'Enabled'", /found 'EQ'/],
    ['status eq Enabled', /Expected a quoted value after 'status eq' but found 'Enabled'/],
    ['status eq', /found the end of the filter/],
    ['status', /Expected eq after status but found the end of the filter/],
    ["status eq 'enabled'", /'enabled' is not a webhook status/],
    ["collectionName eq 'holidays'", /'holidays' is not a collection; collectionName accepts/],
    ["collection-name eq 'holidays'", /'holidays' is not a collection; collection-name accepts/],
    ["collection-name ne 'people'", /Expected eq after collection-name but found 'ne'.*collection-name eq/],
    ["Collection-Name eq 'people'", /Unknown filter field 'Collection-Name'/],
    ["collection_name eq 'people'", /filter on status or collectionName \(also spelled collection-name\)/],
    [
      "collectionName eq 'people' and collection-name eq 'people'",
      /names collectionName twice \(collectionName and collection-name are the same field\)/,
    ],
    [
      "status eq 'Enabled' or collectionName eq 'people'",
      /Expected and or the end of the filter but found 'or'/,
    ],
    ["status eq 'Enabled' AND collectionName eq 'people'", /found 'AND'/],
    ["status eq 'Enabled' and", /ends after 'and'/],
    ["status eq 'Enabled' and status eq 'Disabled'", /names status twice/],
    ["status eq 'Enabled", /never closed/],
    ["'Enabled' eq status", /Expected a field name but found the quoted value 'Enabled'/],
    ["status eq 'Enabled' 'x'", /found the quoted value 'x'/],
    ["(status eq 'Enabled')", /Unknown filter field '\(status'/],
  ];
  for (const [text, reason] of rejected) {
    test(JSON.stringify(text), () => {
      const result = parseWebhookFilter(text);
      assert.equal(result.ok, false);
      assert.match(!result.ok ? result.reason : '', reason);
    });
  }
});

describe('parseWebhookFilter properties', () => {
  test('never throws and always answers a result on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        const result = parseWebhookFilter(text);
        assert.equal(typeof result.ok, 'boolean');
        if (!result.ok) assert.equal(typeof result.reason, 'string');
      }),
      { numRuns: 2000 },
    );
  });

  test('never throws on text built from the grammar’s own tokens', () => {
    const token = fc.constantFrom(
      'status',
      'collectionName',
      'collection-name',
      'eq',
      'ne',
      'and',
      'or',
      "'Enabled'",
      "'Disabled'",
      "'absences'",
      "'",
      "''",
      ' ',
      '\t',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 12 }), (tokens) => {
        const result = parseWebhookFilter(tokens.join(' '));
        if (result.ok)
          assert.ok(result.value.status !== undefined || result.value.collectionName !== undefined);
      }),
      { numRuns: 2000 },
    );
  });
});
