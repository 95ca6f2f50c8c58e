import type * as grpc from '@grpc/grpc-js';
import type { Http2Server, Http2Session } from 'node:http2';
import { contract } from '../gen/contract.js';

/**
 * Raises the HTTP/2 receive windows of `server`'s connections (the stream's through SETTINGS,
 * the connection's through setLocalWindowSize) and the largest DATA frame it accepts. grpc-js
 * (1.14) has no option for these on a server: its default 64 KiB windows make a sender of
 * 8 MB batches wait for a WINDOW_UPDATE every 64 KiB. This reaches into two private members
 * (commonServerOptions, createHttp2Server), so it checks they exist and returns false, changing
 * nothing, when a grpc-js upgrade removed them; test/ts/sidecar.test.ts checks that it works.
 */
export function raiseReceiveWindow(server: grpc.Server, bytes: number, onSession?: (s: Http2Session) => void): boolean {
  const s = server as unknown as {
    commonServerOptions?: { settings?: Record<string, number> };
    createHttp2Server?: (c: unknown) => Http2Server;
  };
  if (typeof s.commonServerOptions !== 'object' || typeof s.createHttp2Server !== 'function') return false;
  s.commonServerOptions.settings = { ...(s.commonServerOptions.settings ?? {}), initialWindowSize: bytes, maxFrameSize: 1 << 20 };
  const create = s.createHttp2Server.bind(server);
  s.createHttp2Server = (c: unknown) => {
    const h = create(c);
    h.on('session', (session: Http2Session) => {
      session.setLocalWindowSize(bytes);
      onSession?.(session);
    });
    return h;
  };
  return true;
}

/** The sidecar's receive window: a few batches in flight per connection (scoring's are 4 MiB, training's chunks 8 MB). */
export const RECEIVE_WINDOW_BYTES = Number(contract.receiveWindowBytes);
