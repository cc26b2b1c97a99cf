import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricsAuthorized } from '@task-scheduler/config';

export interface WorkerHttpOptions {
  host: string;
  /** 0 picks a free port (see {@link WorkerHttpServer.port}). */
  port: number;
  /** The Prometheus exposition, and its content type. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Why the worker is not ready (not connected, a worker not polling, draining), or null when it is. */
  notReady(): Promise<string | null>;
  /** When set, `/metrics` needs `Authorization: Bearer <token>` (METRICS_TOKEN). */
  metricsToken?: string;
}

export interface WorkerHttpServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The worker's HTTP port for its operators: `/metrics` for Prometheus, `/health` (the process answers: a
 * liveness probe) and `/ready` (connected to Temporal and every worker polling: a readiness probe, 503 while
 * draining). Plain node:http: three fixed routes need no framework.
 */
export async function startWorkerHttp(opts: WorkerHttpOptions): Promise<WorkerHttpServer> {
  const server = createServer((req, res) => {
    answer(req, res, opts).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${err instanceof Error ? err.message : String(err)}\n`);
      else res.destroy();
    });
  });
  // Probes and scrapes are short; a client holding a connection open must not keep the drain from ending.
  server.keepAliveTimeout = 5_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(req: IncomingMessage, res: ServerResponse, opts: WorkerHttpOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  switch (path) {
    case '/health':
      return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }));
    case '/ready': {
      const reason = await opts.notReady();
      return reason === null
        ? send(res, 200, 'application/json', JSON.stringify({ status: 'ready' }))
        : send(res, 503, 'application/json', JSON.stringify({ status: 'not_ready', reason }));
    }
    case '/metrics': {
      if (!metricsAuthorized(opts.metricsToken, req.headers.authorization)) {
        return send(res, 401, 'text/plain; charset=utf-8', '/metrics needs Authorization: Bearer <METRICS_TOKEN>\n');
      }
      const { contentType, body } = await opts.metrics();
      return send(res, 200, contentType, body);
    }
    default:
      return send(res, 404, 'text/plain; charset=utf-8', 'not found: the worker serves /metrics, /health and /ready\n');
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A port on `host` free right now, for a server that must be given a fixed address (the Temporal SDK's exporter). */
export async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, host, () => resolve());
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
