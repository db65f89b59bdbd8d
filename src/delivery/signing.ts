// Standard Webhooks signing (SPEC §3): webhook-id, webhook-timestamp and webhook-signature headers.
// Pure apart from HMAC; keys arrive decoded and never leave this module in any printable form.

import { createHmac } from 'node:crypto';
import { formatChangeVersion } from '../domain/change-version.ts';

const KEY_PREFIX = 'whsec_';

/** The HMAC key bytes of a "whsec_<base64>" webhook key (the part after the prefix, base64-decoded). */
export function decodeWebhookKey(key: string): Buffer {
  const encoded = key.startsWith(KEY_PREFIX) ? key.slice(KEY_PREFIX.length) : key;
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length === 0) throw new Error('A webhook key must not be empty.');
  return bytes;
}

/**
 * The webhook-id of an event: unique per webhook and change, and identical on every retry and redelivery of
 * it, so consumers can deduplicate on it.
 */
export function messageId(webhookId: string, changeVersion: number): string {
  return `msg_${webhookId.replace(/-/g, '')}_${formatChangeVersion(changeVersion)}`;
}

/**
 * The webhook-signature header: one "v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">" per key,
 * space-separated (current key first; the previous one too while a rotation overlaps).
 */
export function signatureHeader(
  id: string,
  timestampSeconds: number,
  body: Buffer | string,
  keys: readonly Buffer[],
): string {
  const prefix = `${id}.${timestampSeconds}.`;
  return keys
    .map((key) => `v1,${createHmac('sha256', key).update(prefix).update(body).digest('base64')}`)
    .join(' ');
}
