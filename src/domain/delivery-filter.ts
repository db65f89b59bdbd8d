// The delivery log filter (SPEC §1.3): `status eq 'Pending'|'Failed'|'Delivered'|'Abandoned'` and
// `entityId eq <id>`, joined by `and`. Pure: parses text into a result value and never throws.

export const DELIVERY_STATUSES = ['Pending', 'Failed', 'Delivered', 'Abandoned'] as const;
export type DeliveryStatusName = (typeof DELIVERY_STATUSES)[number];

export interface DeliveryFilter {
  status?: DeliveryStatusName;
  entityId?: number;
}

export type DeliveryFilterResult = { ok: true; value: DeliveryFilter } | { ok: false; reason: string };

const EXAMPLE = `status eq 'Failed' and entityId eq 1001`;

export function parseDeliveryFilter(text: string): DeliveryFilterResult {
  const clauses = text.trim().split(/\s+and\s+/i);
  const value: DeliveryFilter = {};
  for (const clause of clauses) {
    const status = /^status\s+eq\s+'([^']*)'$/.exec(clause.trim());
    const entity = /^entityId\s+eq\s+(\d{1,15})$/.exec(clause.trim());
    if (status) {
      const name = status[1]!;
      if (!(DELIVERY_STATUSES as readonly string[]).includes(name)) {
        return {
          ok: false,
          reason: `'${name}' is not a delivery status; use one of ${DELIVERY_STATUSES.map((s) => `'${s}'`).join(', ')}.`,
        };
      }
      if (value.status !== undefined) return { ok: false, reason: 'The filter names status twice.' };
      value.status = name as DeliveryStatusName;
    } else if (entity) {
      if (value.entityId !== undefined) return { ok: false, reason: 'The filter names entityId twice.' };
      value.entityId = Number(entity[1]);
    } else {
      return {
        ok: false,
        reason: `The filter clause ${JSON.stringify(clause.trim())} is not understood; write, for example, ${EXAMPLE}.`,
      };
    }
  }
  return { ok: true, value };
}
