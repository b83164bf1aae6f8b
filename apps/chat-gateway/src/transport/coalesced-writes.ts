import type { Duplex } from 'node:stream';

/**
 * Makes `socket` gather everything written to it during one tick of the event loop into one system
 * call. Socket.IO writes every packet as its own WebSocket frame and `ws` hands each frame to the
 * socket separately, so a busy connection (a burst of `message`s, a window of acknowledgements) cost
 * one `writev` per packet; corked until the end of the tick they leave together, with no added delay
 * beyond the current tick.
 */
export function coalesceWrites(socket: Duplex): void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Duplex['write'];
}
