// The Node.js flags `npm start` runs the service with, read from package.json's start script, so that the bench
// (and the build test) start the compiled service exactly as users do and no second copy of the flags can drift.

import { readFileSync } from 'node:fs';

const PACKAGE_JSON = new URL('../package.json', import.meta.url);
/** The start script's shape: build, then node with its flags, the compiled CLI and `serve`. */
const START = /^npm run build && node ((?:--[\w-]+(?:=\S+)? )*)dist\/cli\/run\.js serve$/;

/** The flags between `node` and `dist/cli/run.js` in `npm start`, e.g. ["--max-old-space-size=1024"]. */
export function startNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { scripts?: { start?: string } };
  const script = pkg.scripts?.start ?? '';
  const match = START.exec(script);
  if (!match) {
    throw new Error(
      `package.json's start script is ${JSON.stringify(script)}; the bench expects ` +
        '"npm run build && node [--flag[=value] …] dist/cli/run.js serve" so that it runs what npm start runs.',
    );
  }
  return match[1]!.split(' ').filter((flag) => flag !== '');
}
