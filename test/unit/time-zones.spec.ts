import { dstTransitions, isValidTimeZone, localIsoString, zoneOffsetMinutes } from '@task-scheduler/core';

const YEAR_2026: [Date, Date] = [new Date('2026-01-01T00:00:00Z'), new Date('2027-01-01T00:00:00Z')];

describe('time zones', () => {
  test('Europe/Berlin 2026: a gap on 29 March and an overlap on 25 October', () => {
    expect(dstTransitions('Europe/Berlin', ...YEAR_2026)).toEqual([
      {
        at: '2026-03-29T01:00:00.000Z',
        kind: 'gap',
        offsetBefore: '+01:00',
        offsetAfter: '+02:00',
        localStart: '2026-03-29T02:00',
        localEnd: '2026-03-29T03:00',
      },
      {
        at: '2026-10-25T01:00:00.000Z',
        kind: 'overlap',
        offsetBefore: '+02:00',
        offsetAfter: '+01:00',
        localStart: '2026-10-25T02:00',
        localEnd: '2026-10-25T03:00',
      },
    ]);
  });

  test('Europe/Berlin offsets and local strings on either side of the changes', () => {
    expect(zoneOffsetMinutes('Europe/Berlin', new Date('2026-03-29T00:59:59Z'))).toBe(60);
    expect(zoneOffsetMinutes('Europe/Berlin', new Date('2026-03-29T01:00:00Z'))).toBe(120);
    expect(localIsoString(new Date('2026-03-29T00:59:59Z'), 'Europe/Berlin')).toBe('2026-03-29T01:59:59+01:00');
    expect(localIsoString(new Date('2026-03-29T01:30:00Z'), 'Europe/Berlin')).toBe('2026-03-29T03:30:00+02:00');
    // The repeated half hour, once in summer time and once in winter time.
    expect(localIsoString(new Date('2026-10-25T00:30:00Z'), 'Europe/Berlin')).toBe('2026-10-25T02:30:00+02:00');
    expect(localIsoString(new Date('2026-10-25T01:30:00Z'), 'Europe/Berlin')).toBe('2026-10-25T02:30:00+01:00');
    expect(localIsoString(new Date('2026-10-25T01:30:00.250Z'), 'Europe/Berlin')).toBe('2026-10-25T02:30:00.250+01:00');
  });

  test('America/New_York 2026: gap 8 March 02:00-03:00, overlap 1 November 01:00-02:00', () => {
    expect(dstTransitions('America/New_York', ...YEAR_2026)).toEqual([
      {
        at: '2026-03-08T07:00:00.000Z',
        kind: 'gap',
        offsetBefore: '-05:00',
        offsetAfter: '-04:00',
        localStart: '2026-03-08T02:00',
        localEnd: '2026-03-08T03:00',
      },
      {
        at: '2026-11-01T06:00:00.000Z',
        kind: 'overlap',
        offsetBefore: '-04:00',
        offsetAfter: '-05:00',
        localStart: '2026-11-01T01:00',
        localEnd: '2026-11-01T02:00',
      },
    ]);
    expect(zoneOffsetMinutes('America/New_York', new Date('2026-07-01T12:00:00Z'))).toBe(-240);
    expect(localIsoString(new Date('2026-01-15T17:00:00Z'), 'America/New_York')).toBe('2026-01-15T12:00:00-05:00');
  });

  test('UTC has no transitions and a zero offset', () => {
    expect(dstTransitions('UTC', new Date('2000-01-01T00:00:00Z'), new Date('2040-01-01T00:00:00Z'))).toEqual([]);
    expect(zoneOffsetMinutes('UTC', new Date('2026-06-01T00:00:00Z'))).toBe(0);
    expect(localIsoString(new Date('2026-06-01T12:34:56Z'), 'UTC')).toBe('2026-06-01T12:34:56+00:00');
  });

  test('Australia/Lord_Howe shifts by half an hour: overlap 01:30-02:00 in April, gap 02:00-02:30 in October', () => {
    expect(dstTransitions('Australia/Lord_Howe', ...YEAR_2026)).toEqual([
      {
        at: '2026-04-04T15:00:00.000Z',
        kind: 'overlap',
        offsetBefore: '+11:00',
        offsetAfter: '+10:30',
        localStart: '2026-04-05T01:30',
        localEnd: '2026-04-05T02:00',
      },
      {
        at: '2026-10-03T15:30:00.000Z',
        kind: 'gap',
        offsetBefore: '+10:30',
        offsetAfter: '+11:00',
        localStart: '2026-10-04T02:00',
        localEnd: '2026-10-04T02:30',
      },
    ]);
    expect(localIsoString(new Date('2026-07-01T00:00:00Z'), 'Australia/Lord_Howe')).toBe('2026-07-01T10:30:00+10:30');
  });

  test('a range is closed: a change exactly at either end is included, none outside', () => {
    const at = new Date('2026-03-29T01:00:00Z');
    expect(dstTransitions('Europe/Berlin', at, at)).toHaveLength(1);
    expect(dstTransitions('Europe/Berlin', at, new Date('2026-10-25T01:00:00Z'))).toHaveLength(2);
    expect(dstTransitions('Europe/Berlin', new Date(at.getTime() + 1), new Date('2026-10-25T00:59:59Z'))).toEqual([]);
    expect(dstTransitions('Europe/Berlin', new Date('2027-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'))).toEqual([]);
  });

  test('decades are scanned quickly and find two changes a year', () => {
    const all = dstTransitions('Europe/Berlin', new Date('2000-01-01T00:00:00Z'), new Date('2050-01-01T00:00:00Z'));
    expect(all).toHaveLength(100);
    expect(all.every((t) => t.at.endsWith('T01:00:00.000Z'))).toBe(true);
  });

  test('validity', () => {
    for (const zone of ['Europe/Berlin', 'America/New_York', 'UTC', 'Etc/GMT+5', 'Australia/Lord_Howe', 'US/Pacific']) {
      expect(isValidTimeZone(zone)).toBe(true);
    }
    for (const zone of [
      'Mars/Olympus_Mons',
      '',
      '+01:00',
      'Local',
      'europe/berlin',
      'us/pacific',
      'etc/utc',
      'gmt',
      'Europe/Berlin ',
      'x'.repeat(65),
    ]) {
      expect(isValidTimeZone(zone)).toBe(false);
    }
  });

  test('an invalid zone is refused by the other functions too', () => {
    expect(() => zoneOffsetMinutes('Mars/Olympus_Mons', new Date())).toThrow(RangeError);
    expect(() => localIsoString(new Date(), 'Mars/Olympus_Mons')).toThrow(RangeError);
    expect(() => dstTransitions('Mars/Olympus_Mons', ...YEAR_2026)).toThrow(RangeError);
  });
});
