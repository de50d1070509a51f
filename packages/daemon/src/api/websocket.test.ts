import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { acceptKey, acceptWebSocket, checkHandshake, encodeFrame, FrameDecoder, type WebSocketConnection } from './websocket.js';

/** A node:http server whose upgrade handler echoes every input chunk back, upper-cased. */
async function echoServer(onConnection: (ws: WebSocketConnection) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => {
    try {
      onConnection(acceptWebSocket(socket, req.headers, head));
    } catch (error) {
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Length: ${(error as Error).message.length}\r\n\r\n${(error as Error).message}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

describe('RFC 6455 server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it('computes the accept key of RFC 6455 §1.3', () => {
    expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('refuses requests that are not a version 13 handshake', () => {
    const base = { upgrade: 'websocket', connection: 'keep-alive, Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    expect(checkHandshake(base)).toBe('dGhlIHNhbXBsZSBub25jZQ==');
    expect(() => checkHandshake({ ...base, upgrade: 'tcp' })).toThrow(/Upgrade header/);
    expect(() => checkHandshake({ ...base, 'sec-websocket-version': '8' })).toThrow(/version "8"/);
    expect(() => checkHandshake({ ...base, 'sec-websocket-key': 'short' })).toThrow(/Sec-WebSocket-Key/);
  });

  it('decodes masked frames split anywhere and rejects unmasked ones', () => {
    const mask = Buffer.from([1, 2, 3, 4]);
    const payload = Buffer.from('hello websocket');
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
    const frame = Buffer.concat([Buffer.from([0x82, 0x80 | payload.length]), mask, masked]);
    const decoder = new FrameDecoder();
    expect(decoder.push(frame.subarray(0, 3))).toEqual([]);
    const frames = decoder.push(frame.subarray(3));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.payload.toString()).toBe('hello websocket');
    expect(() => new FrameDecoder().push(encodeFrame(2, payload))).toThrow(/masked/);
    // 16-bit and 64-bit lengths
    expect(encodeFrame(2, Buffer.alloc(300)).subarray(0, 4)).toEqual(Buffer.from([0x82, 126, 1, 44]));
    expect(encodeFrame(1, Buffer.alloc(70000))[1]).toBe(127);
  });

  it('talks to the ws client: messages both ways, ping, and a clean close from either side', async () => {
    let conn: WebSocketConnection | undefined;
    const started = await echoServer((ws) => {
      conn = ws;
      ws.input.on('data', (d: Buffer) => ws.send(Buffer.from(d.toString().toUpperCase()), false));
      ws.input.on('end', () => ws.close(1000));
    });
    server = started.server;
    const client = new WebSocket(started.url);
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    const reply = new Promise<string>((resolve) => client.once('message', (d: Buffer, binary: boolean) => resolve(`${binary}:${d.toString()}`)));
    client.send('big '.repeat(20000));
    expect(await reply).toBe(`false:${'BIG '.repeat(20000)}`);
    const pong = new Promise<string>((resolve) => client.once('pong', (d: Buffer) => resolve(d.toString())));
    client.ping('are you there');
    expect(await pong).toBe('are you there');
    const closed = new Promise<number>((resolve) => client.once('close', (code: number) => resolve(code)));
    client.close(4001, 'bye');
    expect(await closed).toBe(4001);
    await conn!.closed;
    expect(conn!.peerCloseCode).toBe(4001);

    // Server-initiated close: the client sees the code and the connection ends.
    const second = new WebSocket(started.url);
    await new Promise((resolve, reject) => second.once('open', resolve).once('error', reject));
    const secondClosed = new Promise<number>((resolve) => second.once('close', (code: number) => resolve(code)));
    conn!.send(Buffer.from([0, 1, 2]), true);
    const message = await new Promise<Buffer>((resolve) => second.once('message', (d: Buffer) => resolve(d)));
    expect([...message]).toEqual([0, 1, 2]);
    conn!.close(1000);
    expect(await secondClosed).toBe(1000);
    await conn!.closed;
  });
});
