import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import type { PipelineParameter } from '@task-scheduler/contracts';
import { applyParams } from '@task-scheduler/core';

const declared: PipelineParameter[] = [{ name: 'region' }, { name: 'date', default: '2026-12-01' }, { name: 'verbose', required: false }];

test('defaults fill what is not given; an optional parameter without a default stays out', () => {
  expect(applyParams(declared, { region: 'eu' })).toEqual({ params: { region: 'eu', date: '2026-12-01' } });
  expect(applyParams(declared, { region: 'eu', date: 'x', verbose: true })).toEqual({ params: { region: 'eu', date: 'x', verbose: true } });
});

test('every problem at once: unknown names, missing required ones; then the size', () => {
  expect(applyParams(declared, { nope: 1 })).toEqual({
    problems: [
      { field: 'params.nope', message: 'nope is not a parameter of this pipeline (it has: region, date, verbose)' },
      { field: 'params.region', message: 'region is required' },
    ],
  });
  expect(applyParams([], { a: 1 })).toEqual({
    problems: [{ field: 'params.a', message: 'a is not a parameter of this pipeline (it has none)' }],
  });
  expect(applyParams(declared, { region: 'x'.repeat(PIPELINE_LIMITS.maxParameterBytes) })).toEqual({
    problems: [
      { field: 'params', message: `the parameters, defaults included, are over ${PIPELINE_LIMITS.maxParameterBytes} bytes as JSON` },
    ],
  });
});
