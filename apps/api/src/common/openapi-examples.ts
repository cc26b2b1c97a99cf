/**
 * Request examples of the OpenAPI document, by operation id: what Swagger UI's "Try it out" sends. Each one must
 * pass the API's validation and succeed: test/e2e/openapi-examples.e2e.spec.ts sends every one of them to a real
 * stack (with {@link EXAMPLE_IDS} replaced by resources it creates first) and expects the documented status.
 */

/** Ids that examples refer to; the example test replaces them with real ones. */
export const EXAMPLE_IDS = {
  task: '0b0c0a51-7a8f-4c44-9a3c-8c2a7f9e6d10',
  calendar: '5f3e2d1c-0b9a-4876-8543-210fedcba987',
  alertChannel: '7c1d9e2a-3b4f-4a6c-8d0e-1f2a3b4c5d6e',
} as const;

type Examples = Record<string, { summary: string; value: Record<string, unknown> }>;

const spec = {
  cron: ['0 2 * * *'],
  timezone: 'Europe/Berlin',
};

export const REQUEST_EXAMPLES: Record<string, Examples> = {
  createTask: {
    shellCommand: {
      summary: 'Shell task: a program with arguments',
      value: {
        name: 'hello',
        description: 'Says hello',
        executor: 'shell',
        shell: { command: 'echo', args: ['hello'], env: { GREETING: 'hi' }, limits: { memoryMb: 256, cpuSeconds: 60 } },
        timeoutSeconds: 300,
        retry: { maximumAttempts: 3, initialIntervalSeconds: 1, backoffCoefficient: 2 },
        tags: ['demo'],
      },
    },
    shellScript: {
      summary: 'Shell task: a script run with /bin/sh -c',
      value: { name: 'nightly-cleanup', executor: 'shell', shell: { script: 'echo cleaning; date' }, priority: 10 },
    },
    http: {
      summary: 'HTTP task: a request with a URL placeholder and a JSON body',
      value: {
        name: 'notify-service',
        executor: 'http',
        http: {
          method: 'POST',
          url: 'https://api.example.com/items/{id}',
          headers: { 'content-type': 'application/json' },
          variables: { id: '42' },
          body: { event: 'ping', attempt: 1 },
          expectedStatus: [200, 202],
        },
        timeoutSeconds: 30,
      },
    },
  },
  triggerTaskRun: {
    plain: { summary: 'Run with the task as it is', value: {} },
    overrides: { summary: 'Run with extra variables and arguments (shell)', value: { env: { MODE: 'full' }, args: ['hello', 'again'] } },
  },
  createSchedule: {
    nightly: {
      summary: 'Every night at 02:00 Berlin time',
      value: {
        name: 'nightly-report',
        taskId: EXAMPLE_IDS.task,
        spec,
        policies: { overlap: 'skip', catchupWindowSeconds: 300 },
        note: 'created from the API documentation',
      },
    },
  },
  previewScheduleSpec: {
    weekdays: {
      summary: 'Working days at 09:30, except a business calendar',
      value: { cron: ['30 9 * * MON-FRI'], timezone: 'America/New_York', excludeCalendarIds: [EXAMPLE_IDS.calendar] },
    },
  },
  updateSchedule: {
    spec: {
      summary: 'Move to 03:15 and allow one run at a time',
      value: { spec: { cron: ['15 3 * * *'], timezone: 'UTC' }, policies: { overlap: 'skip' } },
    },
  },
  pauseSchedule: { note: { summary: 'Pause with a note', value: { note: 'maintenance until Monday' } } },
  resumeSchedule: { note: { summary: 'Resume with a note', value: { note: 'maintenance done' } } },
  triggerSchedule: { now: { summary: 'Fire now even if a run is going', value: { overlap: 'allow_all' } } },
  backfillSchedule: {
    lastDay: {
      summary: 'Run the fires of a past day that have no run',
      value: { start: '2026-11-20T00:00:00Z', end: '2026-11-21T00:00:00Z', onlyMissing: true },
    },
  },
  createCalendar: {
    holidays: {
      summary: 'Holidays and a weekly maintenance window',
      value: {
        name: 'de-holidays-2027',
        description: 'German public holidays',
        holidays: ['2027-01-01', '2027-12-25'],
        weeklyWindows: [{ dayOfWeek: 0, start: '02:00', end: '04:30' }],
      },
    },
  },
  updateCalendar: { holidays: { summary: 'Replace the holidays', value: { holidays: ['2027-01-01', '2027-05-01', '2027-12-25'] } } },
  createAlertChannel: {
    webhook: {
      summary: 'A signed webhook (the answer holds its secret, once)',
      value: { name: 'on-call-webhook', type: 'webhook', url: 'https://hooks.example.com/task-scheduler' },
    },
    slack: {
      summary: 'A Slack incoming webhook',
      value: { name: 'team-slack', type: 'slack', url: 'https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX' },
    },
  },
  createAlertRule: {
    consecutiveFailures: {
      summary: 'Three failed runs in a row open an alert, two successes resolve it; re-notify hourly',
      value: {
        name: 'export-failing',
        kind: 'consecutive_failures',
        taskId: EXAMPLE_IDS.task,
        failures: 3,
        recoveries: 2,
        channelId: EXAMPLE_IDS.alertChannel,
        renotifySeconds: 3600,
      },
    },
    runningTooLong: {
      summary: 'Any run running longer than 2 hours',
      value: { name: 'stuck-runs', kind: 'running_too_long', thresholdSeconds: 7200, channelId: EXAMPLE_IDS.alertChannel },
    },
  },
  updateAlertRule: { quieter: { summary: 'Re-notify every 4 hours', value: { renotifySeconds: 14400 } } },
  createApiKey: {
    operator: { summary: 'A key that may run tasks', value: { name: 'ci-deployer', role: 'operator', expiresAt: '2030-01-01T00:00:00Z' } },
    custom: {
      summary: 'A key with chosen permissions',
      value: { name: 'dashboard', role: 'custom', permissions: ['tasks:read', 'runs:read'] },
    },
  },
  createTenant: {
    acme: {
      summary: 'A tenant with its limits',
      value: { slug: 'acme', name: 'Acme Corp', limits: { maxConcurrentRuns: 20, maxTasks: 500 } },
    },
  },
  updateTenant: {
    rename: { summary: 'Rename and raise a limit', value: { name: 'Acme Corporation', limits: { requestsPerMinute: 1200 } } },
  },
  setAlertSettings: {
    webhook: {
      summary: 'Alert a webhook on final failure',
      value: { webhookUrl: 'https://alerts.example.com/hook', onRecovery: true, windowSeconds: 3600 },
    },
  },
  createPipeline: {
    etl: {
      summary: 'Extract, then load per region and report; alert on failure',
      value: {
        name: 'nightly-etl',
        description: 'Extract the day, load it region by region, report',
        parameters: [{ name: 'date', description: 'The day to process', default: '2026-12-01' }],
        steps: [
          { key: 'extract', task: EXAMPLE_IDS.task, overrides: { env: { DAY: '{{ params.date }}' } } },
          {
            key: 'load',
            task: EXAMPLE_IDS.task,
            dependsOn: ['extract'],
            forEach: ['eu', 'us'],
            overrides: { env: { REGION: '{{ item }}', DAY: '{{ params.date }}' } },
          },
          { key: 'report', task: EXAMPLE_IDS.task, dependsOn: ['load'], when: "steps.extract.status == 'succeeded'" },
          { key: 'alert', task: EXAMPLE_IDS.task, dependsOn: ['load'], triggerRule: 'one_failed' },
        ],
        maxParallelism: 5,
        failurePolicy: 'continue',
      },
    },
  },
  updatePipeline: {
    parallelism: {
      summary: 'Run one step at a time and stop at the first failure (a new version)',
      value: { maxParallelism: 1, failurePolicy: 'fail_fast' },
    },
  },
  startPipelineRun: {
    defaults: { summary: "Run with the parameters' defaults", value: {} },
    params: { summary: 'Run for a given day', value: { params: { date: '2026-11-30' } } },
  },
  updateTask: {
    timeout: { summary: 'Change the timeout and tags (a new version)', value: { timeoutSeconds: 600, tags: ['demo', 'v2'] } },
  },
};
