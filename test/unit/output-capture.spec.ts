import { OutputCapture } from '@task-scheduler/activities';

describe('OutputCapture', () => {
  test('keeps everything under the cap', () => {
    const c = new OutputCapture(10);
    c.push(Buffer.from('hello'));
    expect(c.result()).toEqual({ text: 'hello', truncated: false, bytes: 5 });
  });

  test('keeps the first cap bytes across chunks and counts the rest', () => {
    const c = new OutputCapture(8);
    c.push(Buffer.from('12345'));
    c.push(Buffer.from('67890'));
    c.push(Buffer.from('abc'));
    expect(c.result()).toEqual({ text: '12345678', truncated: true, bytes: 13 });
  });

  test('exactly the cap is not truncated', () => {
    const c = new OutputCapture(4);
    c.push(Buffer.from('abcd'));
    expect(c.result().truncated).toBe(false);
  });
});
