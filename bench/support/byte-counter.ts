// Bytes a client receives from the apiserver, counted at the client's side: a TCP relay on
// 127.0.0.1 in front of the apiserver that the client's kubeconfig points at. It counts the TLS
// stream (payload plus a few percent of record overhead), which is what crosses the wire; the
// apiserver's certificate is valid for 127.0.0.1, so the client verifies it as before.
import net from "node:net";

export interface ByteCounter {
  /** https://127.0.0.1:<port>: the server to put in the client's kubeconfig. */
  url: string;
  /** Bytes from the apiserver to the client so far. */
  received(): number;
  /** Bytes from the client to the apiserver so far. */
  sent(): number;
  stop(): Promise<void>;
}

export async function startByteCounter(upstream: string): Promise<ByteCounter> {
  const target = new URL(upstream);
  let received = 0;
  let sent = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const server = net.connect({ host: target.hostname, port: Number(target.port || 443) });
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => { client.destroy(); server.destroy(); });
    }
    server.on("data", (chunk: Buffer) => (received += chunk.length));
    client.on("data", (chunk: Buffer) => (sent += chunk.length));
    client.pipe(server);
    server.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    received: () => received,
    sent: () => sent,
    stop: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
