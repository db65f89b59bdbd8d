// `timehook demo --duration`: the whole flow on a fresh embedded store, with signatures verified by the
// standardwebhooks package in its receiver; it exits 0 only when every written change arrived correctly signed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/timehook.js', import.meta.url));

test('timehook demo streams changes to a verifying receiver and reports progress', async () => {
  const env = { ...process.env };
  delete env.DATABASE_URL; // the demo always runs on its own embedded store
  const child = spawn(process.execPath, [BIN, 'demo', '--duration', '3', '--rate', '50'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /verifies every signature with standardwebhooks/);
  assert.match(stdout, /changes \d+\/s {2}delivered \d+\/s {2}lag p50 [\d.]+ ms p99 [\d.]+ ms/);
  const done =
    /Done: (\d+) changes written \(0 failed writes\); (\d+) events received, (\d+) with a valid signature \(\d+ duplicates\), 0 with a bad one/.exec(
      stdout,
    );
  assert.ok(done, stdout);
  assert.ok(Number(done[1]) > 0);
  assert.ok(Number(done[3]) >= Number(done[1]));
});
