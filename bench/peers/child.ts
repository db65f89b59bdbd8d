// A peer in a process of its own, forked by bench/peers/process.ts, so that its CPU is measured apart from the
// bench's: "start" sets up the peer (graphile-worker or BullMQ) and its worker, "write" runs the loader and
// answers with the changes and their times, "stop" drains and closes it and answers with the sender's counts.

import type { PeerMessage, PeerReply } from '../protocol.ts';
import { startBullmqPeer } from './bullmq-peer.ts';
import { startGraphilePeer } from './graphile-peer.ts';
import { load } from './loader.ts';
import { Sender, type Peer } from './peer.ts';

if (!process.send) throw new Error('bench/peers/child.ts must be forked with an IPC channel.');

let peer: Peer | undefined;
let sender: Sender | undefined;

const reply = (message: PeerReply, then: () => void = () => undefined) => process.send!(message, then);

async function handle(message: PeerMessage): Promise<void> {
  switch (message.t) {
    case 'start': {
      sender = new Sender(message.config.webhooks);
      if (message.config.kind === 'graphile') {
        peer = await startGraphilePeer(message.config, sender);
        reply({ t: 'ready', info: {} });
      } else {
        const started = await startBullmqPeer(message.config, sender);
        peer = started.peer;
        reply({ t: 'ready', info: started.info });
      }
      break;
    }
    case 'write':
      if (!peer) throw new Error('write before start');
      reply({ t: 'written', result: await load(peer, message.plan) });
      break;
    case 'stop':
      await peer?.stop();
      reply({ t: 'stopped', stats: sender!.stats }, () => process.exit(0));
      break;
  }
}

process.on('message', (message: PeerMessage) => {
  void handle(message).catch((error: Error) =>
    reply({ t: 'failed', error: error.stack ?? error.message }, () => process.exit(1)),
  );
});
// The bench went away (even by SIGKILL): stop at once.
process.on('disconnect', () => process.exit(0));
