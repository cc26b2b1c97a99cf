export default async function globalTeardown(): Promise<void> {
  for (const s of (globalThis.__TS_STOPPERS__ ?? []).reverse()) {
    try {
      await s.stop();
    } catch (err) {
      process.stderr.write(`[global-teardown] could not stop ${s.name}: ${(err as Error).message}\n`);
    }
  }
}
