// The destination rule of SPEC §1.2 and §3: a webhook may only point at a public https endpoint. Used by the
// API when a webhook is created and by the delivery sender on the address it actually connects to.
// It may resolve names (DNS I/O) but knows nothing of HTTP routes, the store or delivery.

import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, isIPv4 } from 'node:net';

export const MAX_DESTINATION_URL_LENGTH = 2048;
export const DNS_TIMEOUT_MS = 5_000;

const INSECURE_HINT = 'set TIMEHOOK_ALLOW_INSECURE_DESTINATIONS=true for local development';

export type BlockedCategory =
  | 'cloud-metadata'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'unique-local'
  | 'multicast'
  | 'reserved';

const DESCRIPTIONS: Record<BlockedCategory, string> = {
  'cloud-metadata': 'a cloud metadata address',
  unspecified: 'an unspecified address',
  loopback: 'a loopback address',
  private: 'a private address',
  'link-local': 'a link-local address',
  cgnat: 'a carrier-grade NAT (100.64.0.0/10) address',
  'unique-local': 'a unique local (fc00::/7) address',
  multicast: 'a multicast address',
  reserved: 'a reserved address',
};

/** Checked in this order, so the metadata address wins over the link-local or ULA range it sits in. */
const RANGES: [BlockedCategory, [string, number, 'ipv4' | 'ipv6'][]][] = [
  [
    'cloud-metadata',
    [
      ['169.254.169.254', 32, 'ipv4'],
      ['fd00:ec2::254', 128, 'ipv6'],
    ],
  ],
  [
    'unspecified',
    [
      ['0.0.0.0', 8, 'ipv4'],
      ['::', 128, 'ipv6'],
    ],
  ],
  [
    'loopback',
    [
      ['127.0.0.0', 8, 'ipv4'],
      ['::1', 128, 'ipv6'],
    ],
  ],
  [
    'private',
    [
      ['10.0.0.0', 8, 'ipv4'],
      ['172.16.0.0', 12, 'ipv4'],
      ['192.168.0.0', 16, 'ipv4'],
      ['fec0::', 10, 'ipv6'], // deprecated site-local
    ],
  ],
  [
    'link-local',
    [
      ['169.254.0.0', 16, 'ipv4'],
      ['fe80::', 10, 'ipv6'],
    ],
  ],
  ['cgnat', [['100.64.0.0', 10, 'ipv4']]],
  ['unique-local', [['fc00::', 7, 'ipv6']]],
  [
    'multicast',
    [
      ['224.0.0.0', 4, 'ipv4'],
      ['ff00::', 8, 'ipv6'],
    ],
  ],
  ['reserved', [['240.0.0.0', 4, 'ipv4']]], // includes the broadcast address 255.255.255.255
];

const BLOCK_LISTS: [BlockedCategory, BlockList][] = RANGES.map(([category, subnets]) => {
  const list = new BlockList();
  for (const [network, prefix, family] of subnets) list.addSubnet(network, prefix, family);
  return [category, list];
});

/** The eight 16-bit groups of an IPv6 address (zone id ignored), or undefined when it is not one. */
function ipv6Groups(ip: string): number[] | undefined {
  let text = ip.split('%')[0]!;
  if (isIP(text) !== 6) return undefined;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((g) => Number.parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address carries when it is a way of reaching IPv4: IPv4-mapped (::ffff:0:0/96),
 * NAT64 (64:ff9b::/96) or 6to4 (2002::/16). Unwrapped so ::ffff:10.0.0.1 cannot slip past the IPv4 rules.
 */
function embeddedIpv4(groups: number[]): string | undefined {
  const quad = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) return quad(g6, g7);
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return quad(g6, g7);
  if (g0 === 0x2002) return quad(g1, g2);
  return undefined;
}

/**
 * The category of address a webhook must not reach (loopback, private, link-local, CGNAT, ULA, multicast,
 * unspecified, cloud metadata, reserved), or undefined for a public address. IPv4 carried in IPv6 is
 * judged as IPv4. Text that is not an IP address counts as 'unspecified', so a caller never lets it through.
 */
export function classifyAddress(ip: string): BlockedCategory | undefined {
  let address = ip.trim().replace(/^\[(.*)\]$/, '$1');
  let family: 'ipv4' | 'ipv6' = 'ipv4';
  if (!isIPv4(address)) {
    const groups = ipv6Groups(address);
    if (!groups) return 'unspecified';
    const inner = embeddedIpv4(groups);
    if (inner !== undefined) {
      address = inner;
    } else {
      address = address.split('%')[0]!;
      family = 'ipv6';
    }
  }
  for (const [category, list] of BLOCK_LISTS) {
    if (list.check(address, family)) return category;
  }
  return undefined;
}

/** Describes a blocked category as a noun phrase: "a private address". */
export const describeCategory = (category: BlockedCategory): string => DESCRIPTIONS[category];

export type HostLookup = (host: string) => Promise<string[]>;

export interface DestinationOptions {
  /** TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: also allow http and non-public addresses. */
  allowInsecure: boolean;
  /** Resolves a host name to all its addresses; dns.lookup with all:true by default. */
  lookup?: HostLookup;
  /** How long to wait for the resolver; DNS_TIMEOUT_MS by default. */
  dnsTimeoutMs?: number;
}

export type DestinationCheck = { ok: true; url: URL } | { ok: false; reason: string };

const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata']);

async function systemLookup(host: string): Promise<string[]> {
  const results = await dnsLookup(host, { all: true, verbatim: true });
  return results.map((r) => r.address);
}

async function resolveWithin(lookup: HostLookup, host: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([lookup(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function failure(reason: string): DestinationCheck {
  return { ok: false, reason };
}

/**
 * Checks a webhook destination (SPEC §1.2): an absolute https URL of at most 2,048 characters, without
 * userinfo or fragment, whose host is not, and does not resolve to, a non-public address. With
 * allowInsecure, http and every address are accepted and the host is not resolved. The reason of a
 * rejection is a sentence with the facts and the fix. Never throws.
 */
export async function checkDestinationUrl(
  text: string,
  options: DestinationOptions,
): Promise<DestinationCheck> {
  if (text.length > MAX_DESTINATION_URL_LENGTH) {
    return failure(
      `destinationUrl is ${text.length} characters long; the limit is ${MAX_DESTINATION_URL_LENGTH}, so shorten it.`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return failure(
      `destinationUrl ${JSON.stringify(text)} is not an absolute URL; give the full address, such as https://hooks.example.com/timehook.`,
    );
  }
  const allowed = options.allowInsecure ? ['https:', 'http:'] : ['https:'];
  if (!allowed.includes(url.protocol)) {
    const hint = url.protocol === 'http:' ? `use https, or ${INSECURE_HINT}` : 'use an https:// URL';
    return failure(`destinationUrl uses the scheme ${url.protocol.slice(0, -1)}; ${hint}.`);
  }
  if (url.username !== '' || url.password !== '') {
    return failure(
      'destinationUrl contains a user name or password; remove them and authenticate the requests by their webhook-signature instead.',
    );
  }
  if (text.includes('#')) {
    return failure('destinationUrl contains a fragment (#…), which is never sent to a server; remove it.');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (host === '')
    return failure('destinationUrl has no host; give one, such as https://hooks.example.com/timehook.');
  if (options.allowInsecure) return { ok: true, url };

  if (isIP(host) !== 0) {
    const category = classifyAddress(host);
    return category
      ? failure(`destinationUrl's host ${host} is ${describeCategory(category)}; ${INSECURE_HINT}.`)
      : { ok: true, url };
  }
  if (METADATA_HOSTS.has(host.toLowerCase())) {
    return failure(
      `destinationUrl's host ${host} is a cloud metadata service and can never receive webhooks.`,
    );
  }
  let addresses: string[];
  try {
    addresses = await resolveWithin(
      options.lookup ?? systemLookup,
      host,
      options.dnsTimeoutMs ?? DNS_TIMEOUT_MS,
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return failure(
      `destinationUrl's host ${host} does not resolve (${code}); check the name, or use a host with a public DNS record.`,
    );
  }
  if (addresses.length === 0) {
    return failure(
      `destinationUrl's host ${host} does not resolve to any address; check the name, or use a host with a public DNS record.`,
    );
  }
  for (const address of addresses) {
    const category = classifyAddress(address);
    if (category) {
      return failure(
        `destinationUrl resolves to ${address}, ${describeCategory(category)}; ${INSECURE_HINT}.`,
      );
    }
  }
  return { ok: true, url };
}
