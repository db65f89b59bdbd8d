// `timehook demo`: arrives with the delivery engine (issue 3).

export async function demoCommand(_args: string[]): Promise<number> {
  process.stderr.write('timehook: the demo arrives with the delivery engine; it is not built yet.\n');
  return 1;
}
