import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { InvalidParameterError } from '../errors.js';

/**
 * The server side of RFC 6455 for `GET /containers/{id}/attach/ws`: the opening handshake on a
 * socket node:http handed over through its `upgrade` event, then framing. It is all moby's
 * attach needs: no extensions (permessage-deflate offers are declined by not answering them), no
 * subprotocols. Incoming data frames become one byte stream (the container's stdin): message
 * boundaries carry no meaning there. That stream has backpressure: while its reader is behind,
 * the socket is not read (control frames wait too, as they would behind data on the wire).
 */

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Largest frame accepted from a client; a bigger one closes the connection with 1009. */
const MAX_FRAME = 16 * 1024 * 1024;
/** How long a close waits for the peer's close frame before the socket is dropped. */
const CLOSE_TIMEOUT_MS = 2000;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export interface WebSocketConnection {
  /** Payload bytes of every data frame from the client; ends when the client closes. */
  readonly input: Readable;
  /** Sends one message; false when the socket's buffer is full (wait for `drain`). */
  send(data: Buffer, binary: boolean): boolean;
  /** Starts the closing handshake (idempotent); the socket closes when it completes. */
  close(code?: number, reason?: string): void;
  /** Resolves when the TCP connection is gone. */
  readonly closed: Promise<void>;
  /** The status code of the client's close frame, once it sent one. */
  readonly peerCloseCode: number | undefined;
  /** The underlying socket, for `drain`. */
  readonly socket: Duplex;
}

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v.join(',') : (v ?? '')).trim();
}

/**
 * Checks an upgrade request is a WebSocket opening handshake; throws a 400 that says what is
 * missing. (Only version 13 exists; an older client gets the 400 too.)
 */
export function checkHandshake(headers: IncomingHttpHeaders): string {
  if (header(headers, 'upgrade').toLowerCase() !== 'websocket') {
    throw new InvalidParameterError('not a websocket handshake: the Upgrade header must be "websocket"');
  }
  if (!header(headers, 'connection').toLowerCase().split(/\s*,\s*/).includes('upgrade')) {
    throw new InvalidParameterError('not a websocket handshake: the Connection header must include "Upgrade"');
  }
  const version = header(headers, 'sec-websocket-version');
  if (version !== '13') throw new InvalidParameterError(`unsupported websocket version "${version}": only 13 is spoken`);
  const key = header(headers, 'sec-websocket-key');
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) throw new InvalidParameterError('not a websocket handshake: missing or malformed Sec-WebSocket-Key');
  return key;
}

/** One unmasked server frame with FIN set. */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  let head: Buffer;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/**
 * Decodes client frames as bytes arrive. Returns the frames complete so far and keeps the rest;
 * throws a `[code, reason]` pair for a protocol violation.
 */
export class FrameDecoder {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) break;
      const fin = (b[0]! & 0x80) !== 0;
      if ((b[0]! & 0x70) !== 0) throw new WebSocketProtocolError(1002, 'reserved bits set without an extension');
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      if (!masked) throw new WebSocketProtocolError(1002, 'client frames must be masked');
      let len = b[1]! & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(MAX_FRAME)) throw new WebSocketProtocolError(1009, 'frame too large');
        len = Number(big);
        offset = 10;
      }
      if (len > MAX_FRAME) throw new WebSocketProtocolError(1009, 'frame too large');
      if (opcode >= 0x8 && (len > 125 || !fin)) throw new WebSocketProtocolError(1002, 'invalid control frame');
      if (b.length < offset + 4 + len) break;
      const mask = b.subarray(offset, offset + 4);
      const payload = Buffer.from(b.subarray(offset + 4, offset + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
      frames.push({ fin, opcode, payload });
      this.#buffer = b.subarray(offset + 4 + len);
    }
    return frames;
  }
}

export class WebSocketProtocolError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Completes the opening handshake on `socket` (writes `101 Switching Protocols`) and returns the
 * connection. Call `checkHandshake` first: this assumes the request is a valid one.
 */
export function acceptWebSocket(socket: Duplex, headers: IncomingHttpHeaders, head: Buffer = Buffer.alloc(0)): WebSocketConnection {
  const key = checkHandshake(headers);
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
  );
  const input = new PassThrough();
  const decoder = new FrameDecoder();
  let closeSent = false;
  let peerCloseCode: number | undefined;
  let closeTimer: NodeJS.Timeout | undefined;
  let fragmentedOpcode: number | undefined;
  let inputBlocked = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closed.then(() => {
    clearTimeout(closeTimer);
    if (!input.writableEnded) input.end();
  });

  const writeFrame = (opcode: number, payload: Buffer): boolean => {
    if (socket.destroyed || socket.writableEnded) return false;
    return socket.write(encodeFrame(opcode, payload));
  };

  const close = (code = 1000, reason = ''): void => {
    if (closeSent) return;
    closeSent = true;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    writeFrame(OP_CLOSE, payload);
    if (!input.writableEnded) input.end();
    // Read on (dropping data) for the peer's close frame, even if stdin had paused the socket.
    socket.resume();
    if (peerCloseCode !== undefined) {
      socket.end();
      return;
    }
    closeTimer = setTimeout(() => socket.destroy(), CLOSE_TIMEOUT_MS);
    closeTimer.unref();
  };

  socket.on('data', (chunk: Buffer) => {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (error) {
      const code = error instanceof WebSocketProtocolError ? error.code : 1002;
      close(code, (error as Error).message.slice(0, 120));
      socket.pause();
      return;
    }
    for (const f of frames) {
      switch (f.opcode) {
        case OP_TEXT:
        case OP_BINARY:
        case OP_CONTINUATION:
          if (f.opcode === OP_CONTINUATION && fragmentedOpcode === undefined) {
            close(1002, 'continuation without a message');
            return;
          }
          if (f.opcode !== OP_CONTINUATION && fragmentedOpcode !== undefined) {
            close(1002, 'new message inside a fragmented one');
            return;
          }
          fragmentedOpcode = f.fin ? undefined : (fragmentedOpcode ?? f.opcode);
          // The reader is behind (the container's stdin is full): stop reading the socket until
          // it catches up, so the client's sends block instead of berthd queueing them.
          if (!input.writableEnded && f.payload.length > 0 && !input.write(f.payload) && !inputBlocked) {
            inputBlocked = true;
            socket.pause();
            input.once('drain', () => {
              inputBlocked = false;
              socket.resume();
            });
          }
          break;
        case OP_PING:
          writeFrame(OP_PONG, f.payload);
          break;
        case OP_PONG:
          break;
        case OP_CLOSE:
          peerCloseCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
          if (!input.writableEnded) input.end();
          if (closeSent) socket.end();
          else close(peerCloseCode === 1005 ? 1000 : peerCloseCode);
          return;
        default:
          close(1002, `unknown opcode ${f.opcode}`);
          return;
      }
    }
  });
  socket.once('end', () => {
    if (!input.writableEnded) input.end();
    if (!socket.writableEnded) socket.end();
  });
  if (head.length > 0) socket.emit('data', head);

  return {
    input,
    send: (data, binary) => writeFrame(binary ? OP_BINARY : OP_TEXT, data),
    close,
    closed,
    get peerCloseCode() {
      return peerCloseCode;
    },
    socket,
  };
}
