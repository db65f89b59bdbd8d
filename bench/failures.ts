// Which first attempts a receiver port in "flaky" mode fails: a deterministic one webhook-id in FLAKY_ONE_IN,
// chosen by a hash of the id, so every system under test meets about 1 % of failures and a retry of the same
// id always succeeds. Pure; shared by bench/receiver.ts and its test.

/** One webhook-id in this many has its first attempt answered 500. */
export const FLAKY_ONE_IN = 100;

/** Whether a flaky port answers the first attempt of `webhookId` with 500 (FNV-1a, then a murmur3 finaliser). */
export function failsFirstAttempt(webhookId: string): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < webhookId.length; i++) {
    h ^= webhookId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % FLAKY_ONE_IN === 0;
}
