/**
 * The dealer's WebSocket listener (`mpc dealer --ws-listen`, used by `privml serve`): the page's
 * party 0 connects to it directly while party 1 uses TCP; only party 0 is admitted there.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { DealerClient } from '../../src/mpc/dealer.js';
import { NET_PRESETS } from '../../src/mpc/net/emulate.js';
import { handshake } from '../../src/mpc/net/handshake.js';
import { connect } from '../../src/mpc/net/tcp.js';
import { connectWs, type WebSocketLike } from '../../src/mpc/net/ws.js';
import { MPC_PROTOCOL_VERSION, runDealer } from '../../src/mpc/roles.js';

const open = (u: string): WebSocketLike => new WebSocket(u) as unknown as WebSocketLike;
const hello = (role: string) => ({ role, version: MPC_PROTOCOL_VERSION, configHash: 'c0ffee', extra: { job: 'test' } });

test('dealer --ws-listen: party 0 over WebSocket, party 1 over TCP; party 1 is refused on the WebSocket port', async () => {
  const log: string[] = [];
  let ports: { port: number; wsPort?: number } | undefined;
  let listening = () => {};
  const ready = new Promise<void>((r) => (listening = r));
  const dealer = runDealer({
    listen: { host: '127.0.0.1', port: 0 },
    listenWs: { host: '127.0.0.1', port: 0 },
    net: NET_PRESETS.none,
    hooks: { log: (l) => log.push(l), connectTimeoutMs: 10_000 },
    onListening: (port, wsPort) => {
      ports = { port, wsPort };
      listening();
    },
  });
  await ready;
  assert.ok(ports!.wsPort && ports!.wsPort !== ports!.port, 'a separate WebSocket port is reported');

  // Party 1 on the WebSocket port: refused by role, the dealer keeps waiting.
  const stray = await connectWs({ url: `ws://127.0.0.1:${ports!.wsPort}/`, label: 'dealer', open });
  await assert.rejects(handshake(stray, hello('party 1'), 'dealer', 5000, false), /closed the connection/);
  assert.ok(
    log.some((l) => /dealer dropped a connection .*party 1/.test(l)),
    `dropped with a reason naming the role: ${log.join(' | ')}`,
  );

  const ws0 = await connectWs({ url: `ws://127.0.0.1:${ports!.wsPort}/`, label: 'dealer', open });
  const tcp1 = await connect({ host: '127.0.0.1', port: ports!.port, label: 'dealer' });
  await Promise.all([handshake(ws0, hello('party 0'), 'dealer', 5000, false), handshake(tcp1, hello('party 1'), 'dealer', 5000, false)]);
  ws0.verified();
  tcp1.verified();
  const [c0, c1] = await Promise.all([DealerClient.connect(0, ws0), DealerClient.connect(1, tcp1)]);
  // Correlated material through both links: party 0's Beaver shares from its seed, party 1's with the dealer's correction.
  const [t0, t1] = await Promise.all([c0.beaver(8), c1.beaver(8)]);
  for (let i = 0; i < 8; i++) assert.equal(BigInt.asIntN(64, (t0.a[i]! + t1.a[i]!) * (t0.b[i]! + t1.b[i]!)), BigInt.asIntN(64, t0.c[i]! + t1.c[i]!));
  c0.close();
  c1.close();
  const stats = await dealer;
  assert.equal(stats.requests >= 1, true);
});
