import { ConfigError, loadConfig } from '@task-scheduler/config';
import { createApp } from './create-app';

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  await app.listen(config.PORT, config.HOST);
  process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), msg: `API listening on ${await app.getUrl()}` })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
