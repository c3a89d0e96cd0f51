import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLoopbackOrUnset, outsideConnections, parseProcNetTcp } from "../../support/network-watch.js";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D2F0 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 020200C0:A1B2 010200C0:01BB 02 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 30 10 -1
`;

describe("the network watch", () => {
  it("reads /proc/net/tcp addresses in host byte order", () => {
    const sockets = parseProcNetTcp(TCP, false);
    assert.deepEqual(sockets.map((s) => s.remote), ["0.0.0.0:0", "127.0.0.1:8080", "192.0.2.1:443"]);
    assert.equal(sockets[2]!.state, "02");
    assert.equal(sockets[2]!.inode, 1003);
  });

  it("reads IPv6 and IPv4-mapped addresses", () => {
    assert.deepEqual(parseProcNetTcp(TCP6, true).map((s) => s.remote), ["[::1]:50000", "[::ffff:7f00:1]:50001"]);
  });

  it("flags only non-listening sockets to addresses outside loopback, SYN_SENT included", () => {
    assert.deepEqual(outsideConnections(parseProcNetTcp(TCP, false)).map((s) => s.remote), ["192.0.2.1:443"]);
    assert.deepEqual(outsideConnections(parseProcNetTcp(TCP6, true)), []);
    assert.equal(isLoopbackOrUnset("10.250.1.5:80"), false);
    assert.equal(isLoopbackOrUnset("127.8.9.1:80"), true);
  });
});
