import type { ServePlan } from '../serve-plan.js';
import type { Io } from '../serve-command.js';

/** Runs a master with plan.workers worker processes (node:cluster). Placeholder until the process manager lands. */
export async function runMaster(plan: ServePlan, io: Io): Promise<number> {
  io.stderr.write(`tsgi serve: --workers ${plan.workers}: process management is not built yet\n`);
  return 1;
}
