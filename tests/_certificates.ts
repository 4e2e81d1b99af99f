/**
 * Certificates made by `openssl` for a test: an authority, a server
 * certificate for 127.0.0.1 and a client certificate without a Common Name
 * (etcd's HTTP gateway refuses one that has one), in a folder of their own.
 *
 * @module
 */

import { runProgram } from "./_helpers.ts";

/** The files made, each a PEM file. */
export interface Certificates extends AsyncDisposable {
  /** The folder holding them. */
  dir: string;
  /** The authority that signs the others. */
  caFile: string;
  /** The server's certificate (for IP 127.0.0.1) and key. */
  serverCertFile: string;
  serverKeyFile: string;
  /** The client's certificate and key. */
  clientCertFile: string;
  clientKeyFile: string;
}

/** Makes an authority, and a server and a client certificate it signs, with `openssl`. */
export async function makeCertificates(): Promise<Certificates> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-tls-" });
  const openssl = async (...args: string[]) => {
    const { code, stderr } = await runProgram("openssl", args, { cwd: dir });
    if (code !== 0) throw new Error(`openssl ${args[0]} failed: ${stderr}`);
  };
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    "req",
    "-x509",
    ...key,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=sleepingd test authority",
  );
  const sign = async (name: string, subject: string, extensions: string) => {
    await Deno.writeTextFile(`${dir}/${name}.ext`, extensions);
    await openssl("req", ...key, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    await openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
  };
  // etcd's gateway calls its own gRPC server with the server certificate: it needs clientAuth too.
  await sign(
    "server",
    "/CN=etcd",
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  await sign("client", "/O=sleepingd", "extendedKeyUsage=clientAuth\n");
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    serverCertFile: `${dir}/server.pem`,
    serverKeyFile: `${dir}/server.key`,
    clientCertFile: `${dir}/client.pem`,
    clientKeyFile: `${dir}/client.key`,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}
