/**
 * TLS to etcd members, per member.
 *
 * grpc-js passes the target host as the TLS server name (SNI) even when it
 * is an IP address. RFC 6066 forbids that: Node only warns (DEP0123), but
 * Deno and Bun refuse to connect (`ERR_INVALID_ARG_VALUE: The property
 * 'options.servername' must not be an IP address`). So a member addressed by
 * IP gets a neutral server name and a certificate check bound to its IP, the
 * check Node would have made. etcd3 builds one set of credentials for all
 * members and none of this; the credentials are set per member here.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { TlsConnectionOptions } from "../../core/tls.ts";

/**
 * The server name sent to members addressed by IP: a name under `.invalid`
 * (RFC 2606), which no real server answers to, so it selects nothing.
 */
const IP_MEMBER_SERVER_NAME = "etcd-member.invalid";

/** What one member's channels need for TLS. */
export interface MemberTls {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
}

/**
 * The credentials and channel options for the member at `host:port`.
 *
 * @param tls The store's TLS settings.
 * @param address The member, `host:port`.
 */
export function memberTls(
  tls: TlsConnectionOptions,
  address: string,
): MemberTls {
  const host = address.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  // grpc-js takes PEM as bytes, the CAs as one bundle.
  const ca = tls.ca === undefined ? null : Buffer.from(tls.ca.join("\n"));
  const byIp = tls.servername === undefined && isIP(host) !== 0;
  const credentials = grpc.credentials.createSsl(
    ca,
    tls.key === undefined ? null : Buffer.from(tls.key),
    tls.cert === undefined ? null : Buffer.from(tls.cert),
    {
      rejectUnauthorized: tls.rejectUnauthorized,
      // grpc-js checks against the server name; by IP, check the IP.
      ...(byIp
        ? {
          checkServerIdentity: (_name: string, cert: PeerCertificate) =>
            checkServerIdentity(host, cert),
        }
        : {}),
    },
  );
  const servername = tls.servername ?? (byIp ? IP_MEMBER_SERVER_NAME : null);
  return {
    credentials,
    options: servername ? { "grpc.ssl_target_name_override": servername } : {},
  };
}
