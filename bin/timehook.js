#!/usr/bin/env node
// The `timehook` command from source: loads the TypeScript through tsx and hands over to the CLI. `npm start`
// runs the compiled build instead (dist/cli/run.js, `npm run build`), which needs about 90 MB less memory.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/run.ts');
