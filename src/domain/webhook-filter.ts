// The webhook list filter (SPEC §1.2): `status eq 'Enabled'|'Disabled'` and `collectionName eq '<name>'`
// (also spelled `collection-name`, the set-up guide's word), joined by `and`. Pure: parses text into a
// result value and never throws, whatever the input.

import { COLLECTIONS, isCollectionName, type CollectionName } from './scopes.ts';

export const WEBHOOK_STATUSES = ['Enabled', 'Disabled'] as const;
export type WebhookStatus = (typeof WEBHOOK_STATUSES)[number];

export interface WebhookFilter {
  status?: WebhookStatus;
  collectionName?: CollectionName;
}

export type WebhookFilterResult = { ok: true; value: WebhookFilter } | { ok: false; reason: string };

type Token = { kind: 'word'; text: string; at: number } | { kind: 'string'; value: string; at: number };

const EXAMPLE = `status eq 'Enabled' and collectionName eq 'absences'`;
type Field = 'status' | 'collectionName';
/** Each accepted spelling of a field name → the field. `collection-name` is how upstream's guide writes it. */
const FIELD_NAMES: ReadonlyMap<string, Field> = new Map([
  ['status', 'status'],
  ['collectionName', 'collectionName'],
  ['collection-name', 'collectionName'],
]);
const FIELDS_HINT = 'filter on status or collectionName (also spelled collection-name)';

const quoteList = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');

/** What a token looked like in the input, for messages that name it. */
function show(token: Token): string {
  return token.kind === 'word' ? `'${token.text}'` : `the quoted value '${token.value.replace(/'/g, "''")}'`;
}

/**
 * Splits the text into words (runs of anything but whitespace and quotes) and quoted values ('…', with ''
 * standing for one quote as in OData). Any amount of whitespace separates tokens.
 */
function tokenize(text: string): { ok: true; tokens: Token[] } | { ok: false; reason: string } {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) {
          return {
            ok: false,
            reason: `The quoted value starting at position ${start + 1} of the filter is never closed; end it with a single quote.`,
          };
        }
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i];
        i++;
      }
      tokens.push({ kind: 'string', value, at: start });
    } else {
      const start = i;
      while (i < text.length && text[i] !== "'" && !/\s/.test(text[i]!)) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
    }
  }
  return { ok: true, tokens };
}

/** An example condition on the field, written with the spelling the filter used. */
const exampleOf = (spelling: string, field: Field): string =>
  field === 'status' ? "status eq 'Enabled'" : `${spelling} eq 'absences'`;

function checkValue(
  field: Field,
  spelling: string,
  value: string,
): { ok: true } | { ok: false; reason: string } {
  if (field === 'status') {
    return (WEBHOOK_STATUSES as readonly string[]).includes(value)
      ? { ok: true }
      : {
          ok: false,
          reason: `'${value}' is not a webhook status; filter on status eq ${quoteList(WEBHOOK_STATUSES).replace(/, (?=[^,]*$)/, ' or ')}.`,
        };
  }
  return isCollectionName(value)
    ? { ok: true }
    : {
        ok: false,
        reason: `'${value}' is not a collection; ${spelling} accepts ${quoteList(COLLECTIONS)}.`,
      };
}

/**
 * Parses a webhook list filter. Keywords and field names are case-sensitive, as upstream; whitespace
 * around tokens is free. Each field may appear once. An empty filter is an error (leave the parameter out
 * instead). The reason names the offending token and says what was expected.
 */
export function parseWebhookFilter(text: string): WebhookFilterResult {
  const tokenized = tokenize(text);
  if (!tokenized.ok) return tokenized;
  const tokens = tokenized.tokens;
  if (tokens.length === 0) {
    return {
      ok: false,
      reason: `The filter is empty; leave the filter parameter out, or write a condition such as ${EXAMPLE}.`,
    };
  }
  const value: WebhookFilter = {};
  const spelledAs = new Map<Field, string>();
  let i = 0;
  for (;;) {
    const field = tokens[i];
    if (field === undefined) {
      return {
        ok: false,
        reason: `The filter ends after 'and'; add a condition such as collectionName eq 'absences'.`,
      };
    }
    if (field.kind !== 'word') {
      return {
        ok: false,
        reason: `Expected a field name but found ${show(field)}; ${FIELDS_HINT}, for example ${EXAMPLE}.`,
      };
    }
    const name = FIELD_NAMES.get(field.text);
    if (name === undefined) {
      return {
        ok: false,
        reason: `Unknown filter field ${show(field)}; ${FIELDS_HINT}, for example ${EXAMPLE}.`,
      };
    }
    const spelling = field.text;
    const earlier = spelledAs.get(name);
    if (earlier !== undefined) {
      const same = earlier === spelling ? '' : ` (${earlier} and ${spelling} are the same field)`;
      return {
        ok: false,
        reason: `The filter names ${name} twice${same}; give each field at most once.`,
      };
    }
    spelledAs.set(name, spelling);
    const op = tokens[i + 1];
    if (op === undefined || op.kind !== 'word' || op.text !== 'eq') {
      return {
        ok: false,
        reason: `Expected eq after ${spelling} but found ${op ? show(op) : 'the end of the filter'}; the only operator is eq, as in ${exampleOf(spelling, name)}.`,
      };
    }
    const operand = tokens[i + 2];
    if (operand === undefined || operand.kind !== 'string') {
      return {
        ok: false,
        reason: `Expected a quoted value after '${spelling} eq' but found ${operand ? show(operand) : 'the end of the filter'}; put the value in single quotes, as in ${exampleOf(spelling, name)}.`,
      };
    }
    const checked = checkValue(name, spelling, operand.value);
    if (!checked.ok) return checked;
    if (name === 'status') value.status = operand.value as WebhookStatus;
    else value.collectionName = operand.value as CollectionName;
    const joiner = tokens[i + 3];
    if (joiner === undefined) return { ok: true, value };
    if (joiner.kind !== 'word' || joiner.text !== 'and') {
      return {
        ok: false,
        reason: `Expected and or the end of the filter but found ${show(joiner)}; join conditions with and.`,
      };
    }
    i += 4;
  }
}
