// The body of a webhook event (SPEC §3): {"changeType","data"} with the change's data as the change log holds
// it (or decorated with external references). The one place an event body is built. Pure.

/** The exact bytes of an event: `data` is the change's JSON text, inserted as it is. */
export function eventBody(changeType: 'InsertOrUpdate' | 'Delete', data: string): string {
  return `{"changeType":"${changeType}","data":${data}}`;
}
