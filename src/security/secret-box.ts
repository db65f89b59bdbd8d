// AES-256-GCM encryption of secrets at rest (webhook keys, signing keys) under the installation key,
// and HMAC-signed opaque tokens (continuation and delta tokens) that clients cannot forge or alter.

import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  readonly #encryptionKey: Buffer;
  readonly #tokenKey: Buffer;

  /** masterKey: 32 bytes. Separate subkeys are derived for encryption and for token signing. */
  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('The installation key must be 32 bytes.');
    this.#encryptionKey = Buffer.from(hkdfSync('sha256', masterKey, '', 'timehook/encryption/v1', 32));
    this.#tokenKey = Buffer.from(hkdfSync('sha256', masterKey, '', 'timehook/tokens/v1', 32));
  }

  /** Returns "v1.<base64url(iv | tag | ciphertext)>". */
  encrypt(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#encryptionKey, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  decrypt(sealed: string): string {
    if (!sealed.startsWith('v1.')) throw new Error('Unknown secret format.');
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.#encryptionKey, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
  }

  /** An opaque, tamper-proof token carrying payload: base64url(JSON) + "." + HMAC. */
  signToken(purpose: string, payload: unknown): string {
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${body}.${this.#mac(purpose, body)}`;
  }

  /** The payload of a token made by signToken for the same purpose, or undefined when forged or malformed. */
  openToken(purpose: string, token: string): unknown {
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const body = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(this.#mac(purpose, body));
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  }

  #mac(purpose: string, body: string): string {
    return createHmac('sha256', this.#tokenKey).update(`${purpose}.${body}`).digest('base64url');
  }
}
