/**
 * Reads what ETCD_CA_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE and
 * ETCD_PASSWORD_FILE name, at start, with an error naming the key and the
 * file when one cannot be used (docs/ARCHITECTURE.md, "Several instances").
 *
 * @module
 */

import type { GlobalConfig } from "../config/types.ts";
import type { EtcdAccess } from "./etcd.ts";

/**
 * The TLS material and credentials the configuration names.
 *
 * @throws {Error} naming the key and file that cannot be read, or do not hold what they should
 */
export async function readEtcdAccess(global: GlobalConfig): Promise<EtcdAccess> {
  const { etcdCaFile, etcdClientCert, etcdUser } = global;
  const read = async (key: string, path: string, holds: RegExp, what: string) => {
    let text;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      throw new Error(`Cannot read ${key} ${path}: ${(error as Error).message}`);
    }
    if (!holds.test(text)) throw new Error(`Cannot use ${key} ${path}: it holds no ${what}`);
    return text;
  };
  const access: EtcdAccess = {};
  if (etcdCaFile) {
    access.caCerts = [await read("ETCD_CA_FILE", etcdCaFile, PEM_CERTIFICATE, "PEM certificate")];
  }
  if (etcdClientCert) {
    access.clientCert = {
      cert: await read(
        "ETCD_CERT_FILE",
        etcdClientCert.certFile,
        PEM_CERTIFICATE,
        "PEM certificate",
      ),
      key: await read("ETCD_KEY_FILE", etcdClientCert.keyFile, PEM_KEY, "PEM private key"),
    };
  }
  if (etcdUser) {
    const text = await read(
      "ETCD_PASSWORD_FILE",
      etcdUser.passwordFile,
      /^[^\r\n]/,
      "password on its first line",
    );
    access.user = { name: etcdUser.name, password: text.split(/\r?\n/)[0] };
  }
  return access;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PEM_KEY = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;
