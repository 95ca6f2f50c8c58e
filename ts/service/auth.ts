import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { contract } from '../gen/contract.js';

/** The metadata key of the secret the JVM gives each sidecar at start (SidecarConf). */
export const SECRET_METADATA = contract.secretMetadata;

/** Rejects every call, health checks included, whose secret does not match. */
export function authInterceptor(secret: string): grpc.ServerInterceptor {
  const expected = Buffer.from(secret);
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const got = metadata.get(SECRET_METADATA)[0];
            const gotBuf = Buffer.from(typeof got === 'string' ? got : '');
            // Constant-time compare so the secret cannot be probed byte by byte.
            const ok = gotBuf.length === expected.length && timingSafeEqual(gotBuf, expected);
            if (ok) mdNext(metadata);
            else call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: `missing or wrong ${SECRET_METADATA}` });
          },
        });
      },
    });
}

