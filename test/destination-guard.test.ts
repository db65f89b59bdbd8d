import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkDestinationUrl,
  classifyAddress,
  type BlockedCategory,
  type HostLookup,
} from '../src/net/destination-guard.ts';

/** A resolver for tests: names map to fixed addresses, anything else fails as DNS would. */
function fakeLookup(table: Record<string, string[]>): HostLookup {
  return async (host) => {
    const addresses = table[host];
    if (addresses) return addresses;
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };
}

const lookup = fakeLookup({
  'hooks.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'internal.example.com': ['10.0.0.4'],
  'mixed.example.com': ['93.184.215.14', '192.168.0.7'],
  'mapped.example.com': ['::ffff:127.0.0.1'],
  'empty.example.com': [],
});
const secure = { allowInsecure: false, lookup };

describe('classifyAddress', () => {
  const cases: [string, BlockedCategory | undefined][] = [
    ['93.184.215.14', undefined],
    ['8.8.8.8', undefined],
    ['2606:4700:4700::1111', undefined],
    ['2001:4860:4860::8888', undefined],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.4', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', undefined],
    ['192.168.1.1', 'private'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.1', undefined],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['169.254.169.254', 'cloud-metadata'],
    ['fd00:ec2::254', 'cloud-metadata'],
    ['255.255.255.255', 'reserved'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'cloud-metadata'],
    ['::ffff:93.184.215.14', undefined],
    ['64:ff9b::a9fe:a9fe', 'cloud-metadata'],
    ['2002:c0a8:0101::1', 'private'],
    ['[::1]', 'loopback'],
    ['not an address', 'unspecified'],
  ];
  for (const [address, expected] of cases) {
    test(`classifies ${address} as ${expected ?? 'public'}`, () => {
      assert.equal(classifyAddress(address), expected);
    });
  }
});

describe('checkDestinationUrl', () => {
  test('accepts an https URL whose host resolves only to public addresses', async () => {
    const result = await checkDestinationUrl('https://hooks.example.com/timehook?source=acme', secure);
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.url.hostname, 'hooks.example.com');
  });

  test('rejects a host resolving to a private address, naming the address and the fix', async () => {
    const result = await checkDestinationUrl('https://internal.example.com/hook', secure);
    assert.deepEqual(result, {
      ok: false,
      reason:
        'destinationUrl resolves to 10.0.0.4, a private address; set TIMEHOOK_ALLOW_INSECURE_DESTINATIONS=true for local development.',
    });
  });

  test('rejects a host when any one of its addresses is blocked', async () => {
    const result = await checkDestinationUrl('https://mixed.example.com/hook', secure);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /192\.168\.0\.7, a private address/);
  });

  test('unwraps an IPv4-mapped IPv6 answer', async () => {
    const result = await checkDestinationUrl('https://mapped.example.com/hook', secure);
    assert.match(!result.ok ? result.reason : '', /a loopback address/);
  });

  test('rejects a host that does not resolve', async () => {
    const result = await checkDestinationUrl('https://nowhere.example.com/hook', secure);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /nowhere\.example\.com does not resolve \(ENOTFOUND\)/);
  });

  test('rejects a host that resolves to no address', async () => {
    const result = await checkDestinationUrl('https://empty.example.com/hook', secure);
    assert.match(!result.ok ? result.reason : '', /does not resolve to any address/);
  });

  test('rejects the GCP metadata host by name without resolving it', async () => {
    let asked = false;
    const result = await checkDestinationUrl('https://metadata.google.internal./computeMetadata/v1', {
      allowInsecure: false,
      lookup: async () => {
        asked = true;
        return ['93.184.215.14'];
      },
    });
    assert.match(!result.ok ? result.reason : '', /cloud metadata/);
    assert.equal(asked, false);
  });

  test('does not resolve IP literals', async () => {
    const result = await checkDestinationUrl('https://93.184.215.14/hook', {
      allowInsecure: false,
      lookup: async () => {
        throw new Error('must not be called');
      },
    });
    assert.equal(result.ok, true);
  });

  test('resolves localhost with the system resolver and rejects it', async () => {
    const result = await checkDestinationUrl('https://localhost/hook', { allowInsecure: false });
    assert.match(!result.ok ? result.reason : '', /resolves to .*a loopback address/);
  });

  test('accepts exactly 2,048 characters and rejects 2,049', async () => {
    const base = 'https://hooks.example.com/';
    const exact = base + 'a'.repeat(2048 - base.length);
    assert.equal((await checkDestinationUrl(exact, secure)).ok, true);
    const over = await checkDestinationUrl(`${exact}a`, secure);
    assert.match(!over.ok ? over.reason : '', /2049 characters long; the limit is 2048/);
  });

  const malformed: [string, string, RegExp][] = [
    ['http without the insecure flag', 'http://hooks.example.com/hook', /scheme http; use https/],
    ['a non-web scheme', 'javascript:alert(1)', /scheme javascript/],
    ['a relative URL', 'hooks.example.com/hook', /not an absolute URL/],
    ['userinfo', 'https://user@hooks.example.com/hook', /user name or password/],
    ['an empty fragment', 'https://hooks.example.com/hook#', /fragment/],
    ['a fragment', 'https://hooks.example.com/hook#section', /fragment/],
  ];
  for (const [what, url, reason] of malformed) {
    test(`rejects ${what}`, async () => {
      const result = await checkDestinationUrl(url, secure);
      assert.equal(result.ok, false);
      assert.match(!result.ok ? result.reason : '', reason);
    });
  }

  test('allows http and non-public hosts with allowInsecure, without resolving them', async () => {
    const insecure = {
      allowInsecure: true,
      lookup: async (): Promise<string[]> => {
        throw new Error('must not be called');
      },
    };
    for (const url of [
      'http://127.0.0.1:8080/hook',
      'http://internal.example.com/hook',
      'https://169.254.169.254/',
      'http://receiver.test/hook',
    ]) {
      assert.equal((await checkDestinationUrl(url, insecure)).ok, true, url);
    }
  });

  test('still rejects userinfo, fragments and other schemes with allowInsecure', async () => {
    for (const url of ['http://a:b@127.0.0.1/', 'http://127.0.0.1/#x', 'ftp://127.0.0.1/']) {
      assert.equal((await checkDestinationUrl(url, { allowInsecure: true, lookup })).ok, false, url);
    }
  });

  test('a resolver that never answers is given up on with a clear reason', async () => {
    const result = await checkDestinationUrl('https://slow.example.com/hook', {
      allowInsecure: false,
      lookup: () => new Promise<string[]>(() => undefined),
      dnsTimeoutMs: 50,
    });
    assert.match(
      !result.ok ? result.reason : '',
      /slow\.example\.com does not resolve \(no answer within 50 ms\)/,
    );
  });
});
