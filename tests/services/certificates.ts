/**
 * Test certificates made with `openssl`: a CA, a server certificate for the
 * loopback address, and a client certificate, all signed by that CA. Every
 * TLS test of every backend uses these.
 *
 * @module
 */

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureCommand, run, tempDir } from "./process.ts";

/** A CA with a server and a client certificate, as files and as PEM text. */
export interface TestCertificates {
  /** The directory holding the files. */
  readonly dir: string;
  /** Paths of the PEM files. */
  readonly files: Readonly<
    Record<
      "ca" | "caKey" | "serverCert" | "serverKey" | "clientCert" | "clientKey",
      string
    >
  >;
  /** The CA certificate: what both sides trust. */
  readonly ca: string;
  /** The server's certificate (for 127.0.0.1, localhost and `hosts`). */
  readonly serverCert: string;
  /** The server's private key. */
  readonly serverKey: string;
  /** The client's certificate. */
  readonly clientCert: string;
  /** The client's private key. */
  readonly clientKey: string;
  /** Removes the files. */
  remove(): void;
}

/** Options of {@linkcode makeCertificates}. */
export interface CertificateOptions {
  /** The CA's common name (default "valkeyrie test CA"); two CAs differ by it. */
  caName?: string;
  /** More DNS names the server certificate is valid for. */
  hosts?: string[];
  /** The client certificate's common name (etcd maps it to a user). */
  clientName?: string;
}

/** Certificates are valid this long: tests need hours, not years. */
const VALID_DAYS = "2";

/** Makes a fresh CA and its server and client certificates. */
export function makeCertificates(
  options: CertificateOptions = {},
): TestCertificates {
  ensureCommand("openssl", ["openssl"]);
  const dir = tempDir("certs");
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run("openssl", args, { cwd: dir });
  // EC keys: much faster to make than RSA, and every client here takes them.
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  openssl(
    "req",
    "-x509",
    "-nodes",
    ...newKey,
    "-days",
    VALID_DAYS,
    "-subj",
    `/CN=${options.caName ?? "valkeyrie test CA"}`,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  const names = [
    "IP:127.0.0.1",
    "DNS:localhost",
    ...(options.hosts ?? []).map((h) => `DNS:${h}`),
  ];
  const sign = (name: string, cn: string, extensions: string) => {
    writeFileSync(path(`${name}.ext`), extensions);
    openssl(
      "req",
      "-nodes",
      ...newKey,
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      VALID_DAYS,
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
  };
  // Servers may dial each other or themselves with their certificate (etcd's
  // gateway does): it serves as a client certificate too.
  sign(
    "server",
    "127.0.0.1",
    `subjectAltName=${
      names.join(",")
    }\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  sign(
    "client",
    options.clientName ?? "client",
    "extendedKeyUsage=clientAuth\n",
  );
  const files = {
    ca: path("ca.pem"),
    caKey: path("ca.key"),
    serverCert: path("server.pem"),
    serverKey: path("server.key"),
    clientCert: path("client.pem"),
    clientKey: path("client.key"),
  };
  const read = (file: string) => readFileSync(file, "utf8");
  return {
    dir,
    files,
    ca: read(files.ca),
    serverCert: read(files.serverCert),
    serverKey: read(files.serverKey),
    clientCert: read(files.clientCert),
    clientKey: read(files.clientKey),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
