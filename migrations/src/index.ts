import { InitialSchema1732300000000 } from './1732300000000-initial-schema';
import { RateLimits1732400000000 } from './1732400000000-rate-limits';
import { ExecutionEngine1732500000000 } from './1732500000000-execution-engine';
import { Schedules1732600000000 } from './1732600000000-schedules';
import { ShellIsolation1732700000000 } from './1732700000000-shell-isolation';
import { TaskLifecycle1732800000000 } from './1732800000000-task-lifecycle';
import { Pipelines1733000000000 } from './1733000000000-pipelines';
import { PipelineStepRuns1733000000001 } from './1733000000001-pipeline-step-runs';
import { RunOutput1733100000000 } from './1733100000000-run-output';
import { Alerts1733200000000 } from './1733200000000-alerts';
import { Retention1733200000001 } from './1733200000001-retention';
import { SlotWaits1733300000000 } from './1733300000000-slot-waits';
import { SlotRefusedIndex1733300000001 } from './1733300000001-slot-refused-index';

/** Every migration, oldest first. Add new ones at the end. */
export const MIGRATIONS = [
  InitialSchema1732300000000,
  RateLimits1732400000000,
  ExecutionEngine1732500000000,
  Schedules1732600000000,
  ShellIsolation1732700000000,
  TaskLifecycle1732800000000,
  Pipelines1733000000000,
  PipelineStepRuns1733000000001,
  RunOutput1733100000000,
  Alerts1733200000000,
  Retention1733200000001,
  SlotWaits1733300000000,
  SlotRefusedIndex1733300000001,
];
