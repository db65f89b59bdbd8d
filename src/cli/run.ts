// The process entry of the `timehook` command: runs the CLI on argv and exits with its code. `npm start`
// runs it compiled (dist/cli/run.js); bin/timehook.js runs it from source through tsx.
import { runCli } from './main.ts';

process.exitCode = await runCli(process.argv.slice(2));
