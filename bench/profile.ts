// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by module, so a report can say
// where the service spends its CPU without opening a flame graph.

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Sampled time not spent idle; percentages below are of this. */
  busyMs: number;
  topFunctions: { name: string; selfMs: number; percent: number }[];
  topModules: { module: string; selfMs: number; percent: number }[];
}

/** "src/store/deliveries.ts", "pg", "undici", "node:internal", "(wasm)", "(program)"… */
function moduleOf(url: string, name: string): string {
  if (url.startsWith('wasm://')) return '(wasm: PGlite)';
  if (!url) return name.startsWith('(') ? name : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const src = /\/((?:src|bench|bin)\/.+)$/.exec(url);
  if (src) return src[1]!;
  if (url.startsWith('node:')) return url.split('/')[0]!.replace(/^node:internal.*/, 'node:internal');
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file: string, top = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    totalUs += dt;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  });
  const functions = new Map<string, number>();
  const modules = new Map<string, number>();
  let busyUs = totalUs;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    if (frame.functionName === '(idle)') {
      busyUs -= us;
      continue;
    }
    const module = moduleOf(frame.url, frame.functionName);
    const name = `${frame.functionName || '(anonymous)'} ${module}:${frame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    modules.set(module, (modules.get(module) ?? 0) + us);
  }
  const rank = <K extends string>(map: Map<string, number>, key: K) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({
        [key]: name,
        selfMs: Math.round(us / 1000),
        percent: Math.round((1000 * us) / Math.max(busyUs, 1)) / 10,
      })) as ({ selfMs: number; percent: number } & Record<K, string>)[];
  return {
    file,
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    topFunctions: rank(functions, 'name'),
    topModules: rank(modules, 'module'),
  };
}
