import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { decodeWebhookKey, messageId, signatureHeader } from '../../src/delivery/signing.ts';

const newKey = () => `whsec_${randomBytes(32).toString('base64')}`;
const body = '{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000000000000000000A","id":1001}}';

function headers(id: string, timestamp: number, signature: string) {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
}

describe('Standard Webhooks signing', () => {
  test('a signature verifies with the standardwebhooks package', () => {
    const key = newKey();
    const id = messageId('a7d853ea-89eb-4735-83d1-b891c6fde398', 10);
    const ts = Math.floor(Date.now() / 1000);
    const signature = signatureHeader(id, ts, Buffer.from(body), [decodeWebhookKey(key)]);
    assert.match(signature, /^v1,[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(new Webhook(key).verify(body, headers(id, ts, signature)), JSON.parse(body));
  });

  test('equals the signature standardwebhooks computes', () => {
    const key = newKey();
    const ts = 1_767_225_600;
    const ours = signatureHeader('msg_x', ts, body, [decodeWebhookKey(key)]);
    assert.equal(ours, new Webhook(key).sign('msg_x', new Date(ts * 1000), body));
  });

  test('during a rotation both keys verify the one header', () => {
    const current = newKey();
    const previous = newKey();
    const ts = Math.floor(Date.now() / 1000);
    const signature = signatureHeader('msg_rot', ts, body, [
      decodeWebhookKey(current),
      decodeWebhookKey(previous),
    ]);
    assert.equal(signature.split(' ').length, 2);
    for (const key of [current, previous]) {
      assert.doesNotThrow(() => new Webhook(key).verify(body, headers('msg_rot', ts, signature)));
    }
    assert.throws(() => new Webhook(newKey()).verify(body, headers('msg_rot', ts, signature)));
  });

  test('a changed body, id or timestamp fails verification', () => {
    const key = newKey();
    const ts = Math.floor(Date.now() / 1000);
    const signature = signatureHeader('msg_a', ts, body, [decodeWebhookKey(key)]);
    const wh = new Webhook(key);
    assert.throws(() => wh.verify(body.replace('1001', '1002'), headers('msg_a', ts, signature)));
    assert.throws(() => wh.verify(body, headers('msg_b', ts, signature)));
    assert.throws(() => wh.verify(body, headers('msg_a', ts + 1, signature)));
  });

  test('webhook-id is stable per webhook and change and differs otherwise', () => {
    const w = 'a7d853ea-89eb-4735-83d1-b891c6fde398';
    assert.equal(messageId(w, 10), messageId(w, 10));
    assert.equal(messageId(w, 10), 'msg_a7d853ea89eb473583d1b891c6fde398_0000000000000000000A');
    assert.notEqual(messageId(w, 10), messageId(w, 11));
    assert.notEqual(messageId(w, 10), messageId('b7d853ea-89eb-4735-83d1-b891c6fde398', 10));
  });
});
